"""``dashboard``: render the Grafana saturation dashboard (JSON ready to import).

    livekit-agents-exporter dashboard --config mixin.yaml -o livekit-agents-saturation.json \\
        --datasource Prometheus-prod

``--config`` is the mixin configuration ``rules --config`` reads too (docs/MIXIN_CONFIG.md);
``--selector``, ``--title``, ``--uid`` and ``--target-load`` override its values.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .. import extras
from ..cli import UsageError
from ..config_file import ConfigError
from ..dashboard.options import DashboardOptions
from ..prometheus_syntax import SelectorError, parse_matchers
from ..rules.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", metavar="FILE",
        help="write the dashboard JSON to FILE (default: standard output)")
    parser.add_argument(
        "--config", metavar="FILE",
        help="the mixin configuration, the file `rules --config` reads: selector, "
             "aggregation_labels, worker_labels, server_target_load, dashboard_uid, "
             "dashboard_title (unset keys keep their defaults)")
    parser.add_argument("--title", help="dashboard title (default: the config's dashboard_title)")
    parser.add_argument(
        "--uid",
        help="dashboard uid; change it to import several variants side by side "
             "(default: the config's dashboard_uid)")
    parser.add_argument(
        "--datasource", metavar="NAME",
        help="default of the Prometheus datasource variable (name or uid); the variable "
             "stays, so it can still be changed in Grafana")
    parser.add_argument(
        "--selector", metavar="MATCHERS",
        help="label matchers on every worker query and variable, replacing the config's "
             "selector (same syntax), e.g. 'env=\"prod\", team=~\"voice|video\"'")
    parser.add_argument(
        "--target-load", type=float, metavar="RATIO",
        help="default of the target_load variable, the LiveKit server's agents.target_load "
             "(default: the config's server_target_load)")


def run(args: argparse.Namespace) -> int:
    try:
        mixin = load_config(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    try:
        selector = None if args.selector is None else parse_matchers(args.selector)
    except SelectorError as exc:
        raise UsageError(f"--selector: {exc}") from exc
    try:
        options = DashboardOptions(mixin=mixin, title=args.title, uid=args.uid,
                                   datasource=args.datasource, selector=selector,
                                   target_load=args.target_load)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    extras.require("dashboard", "the dashboard generator")  # one sentence naming the extra
    from ..dashboard.build import render_json

    text = render_json(options)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        _write(Path(args.output), text)
    return 0


def _write(path: Path, text: str) -> None:
    """Write atomically: a failed write never leaves a truncated dashboard behind."""
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
