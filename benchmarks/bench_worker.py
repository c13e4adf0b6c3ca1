"""One benchmark worker: the synthetic agent on a real livekit-agents worker, in its own process.

The benchmarks start it with and without ``instrument()`` (and optionally with the SDK's own
``prometheus_port``) so that the only difference between two runs is the exporter. It prints
one JSON line on stdout once registered (pid and the metrics URLs), then runs until SIGTERM.

With ``--lag-file`` it also measures its own event-loop lag: a task sleeps ``LAG_PERIOD_S``
again and again and records how late it woke up, stamped with ``time.monotonic()`` (the
system-wide clock on Linux, so the parent can match samples to its phases). The samples are
written when the worker stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

LAG_PERIOD_S = 0.005


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--api-secret", required=True)
    parser.add_argument("--agent-name", default="bench")
    parser.add_argument("--capacity", type=int, default=64)
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--instrument", action="store_true",
                        help="call instrument() on the options")
    parser.add_argument("--sdk-metrics", action="store_true",
                   help="also enable the SDK's own endpoint (prometheus_port)")
    parser.add_argument("--executor", choices=("thread", "process"), default="thread")
    parser.add_argument("--lag-file", type=Path, default=None)
    return parser.parse_args(argv)


def _spec(req: Any) -> dict[str, Any]:
    from livekit_agents_exporter.synthetic import job_spec

    return job_spec(req.job)


async def on_request(req: Any) -> None:
    """The job mix's request handler: accept, unless the dispatcher asked for a rejection."""
    if _spec(req).get("reject"):
        await req.reject()
    else:
        await req.accept()


class BenchLoad:
    """The synthetic agent's slot load, or 1.0 (full) while saturation is switched on.

    SIGUSR1 switches saturation on and off, so a benchmark can have the worker refuse
    every offer as full without running jobs whose own cost would blur the measurement.
    """

    def __init__(self, capacity: int) -> None:
        from livekit_agents_exporter.synthetic import SlotLoad

        self.slots = SlotLoad(capacity)
        self.saturated = False

    def as_function(self) -> Callable[[Any], float]:
        """A plain function: the SDK runs ``inspect.signature(load_fnc)`` on every call, and a
        plain function is the cheapest case for it (a callable object such as this one costs
        twice as much), so the bare worker's baseline is not made slower than it need be."""
        slots = self.slots

        def load_fnc(worker: Any) -> float:
            return 1.0 if self.saturated else slots(worker)

        return load_fnc

    def toggle(self) -> None:
        self.saturated = not self.saturated


async def lag_probe(samples: array[float]) -> None:
    loop_time = time.monotonic
    while True:
        start = loop_time()
        await asyncio.sleep(LAG_PERIOD_S)
        end = loop_time()
        samples.append(start)
        samples.append(end - start - LAG_PERIOD_S)


async def serve(args: argparse.Namespace) -> None:
    from livekit_agents_exporter import sdk
    from livekit_agents_exporter.synthetic import synthetic_entrypoint

    load = BenchLoad(args.capacity)
    kw: dict[str, Any] = {}
    if args.sdk_metrics:
        kw["prometheus_port"] = 0
    opts = sdk.worker_options(
        synthetic_entrypoint, request_fnc=on_request, load_fnc=load.as_function(),
        load_threshold=args.threshold, agent_name=args.agent_name, ws_url=args.url,
        api_key=args.api_key, api_secret=args.api_secret, executor=args.executor,
        num_idle_processes=1, host="127.0.0.1", port=0, **kw)
    exporter = None
    if args.instrument:
        from livekit_agents_exporter import instrument

        exporter = instrument(opts, host="127.0.0.1", port=0)
    worker = sdk.build_worker(opts)  # what cli.run_app(opts) builds
    run = sdk.run_worker(worker)

    samples: array[float] = array("d")
    probe = asyncio.ensure_future(lag_probe(samples)) if args.lag_file else None
    task = asyncio.ensure_future(run)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, load.toggle)

    while worker.id == "unregistered" and not task.done():
        await asyncio.sleep(0.02)
    sdk_port = sdk.native_metrics_port(worker)
    print(json.dumps({
        "exporter_url": exporter.url if exporter else None,
        "sdk_metrics_url": (f"http://127.0.0.1:{sdk_port}/metrics"
                            if sdk_port is not None else None),
    }), flush=True)

    await asyncio.wait([task, asyncio.ensure_future(stop.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    if probe is not None:
        probe.cancel()
        args.lag_file.write_bytes(samples.tobytes())
    with contextlib.suppress(Exception):
        await asyncio.wait_for(worker.aclose(), 10)
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    if exporter is not None:
        exporter.close()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s",
                        stream=sys.stderr)
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
