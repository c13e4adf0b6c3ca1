"""``python -m livekit_agents_exporter.simulator``: run the fake server until Ctrl-C.

``python -m livekit_agents_exporter.simulator dispatch --agent-name NAME`` sends a running
simulator one job (the same as ``curl -X POST 'http://127.0.0.1:7880/dispatch?agent_name=NAME'``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING

from ..extras import MissingExtraError, require
from .server_log import ENCODINGS

if TYPE_CHECKING:  # the server needs livekit-agents' protocol: imported once it is there
    from .server import SimulatorConfig


async def _serve(config: SimulatorConfig) -> None:
    from .server import Simulator

    sim = Simulator(config)
    await sim.start()
    print(f"LiveKit dispatch simulator on {', '.join(sim.node_urls)} "
          f"(api key {config.api_key!r}); ground truth at {sim.metrics_url}", flush=True,
          file=sys.stderr if config.server_log == "-" else sys.stdout)  # stdout: the log
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()


def dispatch(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m livekit_agents_exporter.simulator dispatch",
                                description="send a running simulator jobs, print each outcome")
    p.add_argument("--url", default="http://127.0.0.1:7880",
                   help="the simulator (http or ws URL; default http://127.0.0.1:7880)")
    p.add_argument("--agent-name", default="", help="agent_name to dispatch to (default: '')")
    p.add_argument("--metadata", default=None, help="job metadata text")
    p.add_argument("--count", type=int, default=1, help="jobs to send, one after the other")
    args = p.parse_args(argv)
    if args.count < 1:
        p.error(f"--count must be at least 1, got {args.count}")
    base = args.url.replace("ws://", "http://", 1).replace("wss://", "https://", 1).rstrip("/")
    query = {"agent_name": args.agent_name}
    if args.metadata is not None:
        query["metadata"] = args.metadata
    url = f"{base}/dispatch?{urllib.parse.urlencode(query)}"
    for _ in range(args.count):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="POST"),
                                        timeout=30) as resp:
                result = json.load(resp)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            print(f"simulator dispatch: cannot reach {base}: {reason}", file=sys.stderr)
            return 2
        print(f"{result['job_id']}: {result['outcome']}"
              + (f" on {result['worker_id']}" if result.get("worker_id") else ""), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["dispatch"]:
        return dispatch(argv[1:])
    p = argparse.ArgumentParser(prog="python -m livekit_agents_exporter.simulator",
                                epilog="python -m livekit_agents_exporter.simulator dispatch "
                                       "--help: send it a job")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7880)
    p.add_argument("--api-key", default="devkey")
    p.add_argument("--api-secret", default="secret")
    p.add_argument("--target-load", type=float, default=0.7)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--server-log", metavar="PATH",
                   help="write livekit-server's dispatch log lines to PATH (appended; - for "
                        "stdout), for the mtail program in server-log/")
    p.add_argument("--server-log-format", choices=ENCODINGS, default="json",
                   help="the logger's encoding: json (logging.json: true) or console")
    args = p.parse_args(argv)
    if not 0 < args.target_load <= 1:
        p.error(f"--target-load must be in (0, 1], got {args.target_load}")
    try:
        require("livekit", "the simulator")
    except MissingExtraError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    from .server import SimulatorConfig

    config = SimulatorConfig(api_key=args.api_key, api_secret=args.api_secret,
                             target_load=args.target_load, nodes=args.nodes,
                             host=args.host, port=args.port, server_log=args.server_log,
                             server_log_encoding=args.server_log_format)
    try:
        asyncio.run(_serve(config))
    except OSError as exc:
        print(f"simulator: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
