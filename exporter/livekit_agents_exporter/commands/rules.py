"""``rules``: render the alert pack as a Prometheus rule file or a PrometheusRule object."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import UsageError
from ..rules import ConfigError, example_config, load_config, render_text
from ..rules.render import FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="YAML configuration (unset keys keep their defaults; "
                             "see --example-config)")
    parser.add_argument("--format", choices=FORMATS, default="prometheus",
                        help="a Prometheus rule file (default) or a prometheus-operator "
                             "PrometheusRule object")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    parser.add_argument("--example-config", action="store_true",
                        help="print every configuration key with its default and exit")


def run(args: argparse.Namespace) -> int:
    if args.example_config:
        text = example_config()
    else:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        text = render_text(config, args.format, Path(args.config).name if args.config else "")
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    return 0
