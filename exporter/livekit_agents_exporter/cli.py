"""The ``livekit-agents-exporter`` command.

Each subcommand lives in its own module and registers itself in ``COMMANDS``; this
file only parses the command line and turns expected failures (bad input, an optional
extra the command needs but that is not installed) into one clear message and exit
code 2 (never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from .extras import MissingExtraError

# name -> (module, one-line help); each module defines add_arguments(parser) and run(args)
COMMANDS: dict[str, tuple[str, str]] = {
    "metrics": ("livekit_agents_exporter.commands.metrics_doc",
                "print the metric catalogue as a Markdown table"),
    "rules": ("livekit_agents_exporter.commands.rules",
              "render the alert pack: Prometheus rule file or PrometheusRule object"),
    "demo": ("livekit_agents_exporter.commands.demo",
             "run a simulated LiveKit server and real instrumented workers into saturation"),
    "check-web-config": ("livekit_agents_exporter.commands.check_web_config",
                         "validate a --web.config.file (TLS, client certificates, basic auth)"),
    "dashboard": ("livekit_agents_exporter.commands.dashboard",
                  "render the Grafana dashboard JSON"),
    "server-log": ("livekit_agents_exporter.commands.server_log",
                   "follow livekit-server's log and write clean, whole lines for mtail"),
}


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    parser = argparse.ArgumentParser(
        prog="livekit-agents-exporter",
        description="Prometheus metrics, alert rules and a Grafana dashboard for LiveKit Agents "
                    "worker saturation.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        mod = import_module(module)
        mod.add_arguments(command)
        command.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int | None] = args._run
    try:
        return int(run(args) or 0)
    except (UsageError, MissingExtraError) as exc:
        print(f"livekit-agents-exporter {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
