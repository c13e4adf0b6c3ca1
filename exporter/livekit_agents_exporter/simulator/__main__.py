"""``python -m livekit_agents_exporter.simulator``: run the fake server until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .server import Simulator, SimulatorConfig
from .server_log import ENCODINGS


async def _serve(config: SimulatorConfig) -> None:
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m livekit_agents_exporter.simulator")
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
