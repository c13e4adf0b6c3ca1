"""``server-log``: livekit-server's log, cleaned and joined for mtail, with a heartbeat.

``livekit-agents-exporter server-log '/var/log/pods/*_livekit-*/livekit-server/*.log'``
follows those files (new ones and rotations included) and writes whole, clean lines to
stdout (or ``-o FIFO``) for ``mtail --logs /dev/stdin``; without a path it filters stdin.
See ``server_log/filter.py`` for why, and server-log/README.md for the pipelines.
"""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO

from ..cli import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="FILE_OR_GLOB",
                        help="log files to follow (quoted globs are re-expanded, so new pods' "
                             "files are picked up); none: read stdin")
    parser.add_argument("-o", "--output", metavar="PATH", default="-",
                        help="where the clean lines go: - (stdout, the default), a FIFO mtail "
                             "reads, or a file (appended)")
    parser.add_argument("--heartbeat", type=float, default=10.0, metavar="SECONDS",
                        help="write a heartbeat line this often, 0 to disable (default 10)")
    parser.add_argument("--poll", type=float, default=0.25, metavar="SECONDS",
                        help="how often followed files are read (default 0.25)")
    parser.add_argument("--from-start", action="store_true",
                        help="read files found at start from their beginning, not their end")


def _output(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdout.buffer
    try:
        return open(path, "ab")  # noqa: SIM115 - lives as long as the command
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    from ..server_log.filter import Filter

    if args.heartbeat < 0 or args.poll <= 0:
        raise UsageError("--heartbeat must be >= 0 and --poll > 0")
    out = _output(args.output)
    log_filter = Filter(out, heartbeat=args.heartbeat)
    try:
        if args.paths:
            log_filter.run_files(args.paths, poll=args.poll, from_start=args.from_start)
        else:
            log_filter.run_stream(sys.stdin.buffer)
    except BrokenPipeError:
        print("livekit-agents-exporter server-log: the reader of the output went away",
              file=sys.stderr)
        return 1
    return 0
