"""One instrumented demo worker, run as its own OS process like a real pod.

It is the synthetic agent (``synthetic.py``) on the real livekit-agents worker,
built through ``WorkerOptions`` so the same code runs on every supported SDK, and
instrumented with one ``instrument()`` call exactly as the README tells users to.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys

from ..http_server import ExporterStartError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Credentials come from LIVEKIT_API_KEY and LIVEKIT_API_SECRET, as for any SDK worker."""
    parser = argparse.ArgumentParser(prog="livekit-agents-exporter-demo-worker")
    parser.add_argument("--url", required=True)
    parser.add_argument("--agent-name", default="demo")
    parser.add_argument("--capacity", type=int, default=4)
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--metrics-host", default="127.0.0.1")
    parser.add_argument("--metrics-port", type=int, required=True)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    from .. import sdk
    from ..instrumentation import instrument
    from ..synthetic import SlotLoad, synthetic_entrypoint

    opts = sdk.worker_options(
        synthetic_entrypoint, load_fnc=SlotLoad(args.capacity),
        load_threshold=args.threshold, agent_name=args.agent_name, ws_url=args.url,
        api_key=os.environ["LIVEKIT_API_KEY"], api_secret=os.environ["LIVEKIT_API_SECRET"],
        executor="thread", num_idle_processes=args.capacity, port=0)
    instrument(opts, host=args.metrics_host, port=args.metrics_port)
    worker = sdk.build_worker(opts)  # what cli.run_app(opts) builds
    task = asyncio.ensure_future(sdk.run_worker(worker))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await asyncio.wait([task, asyncio.ensure_future(stop.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(worker.aclose(), 10)
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(serve(args))
    except ExporterStartError as exc:
        print(f"demo worker: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
