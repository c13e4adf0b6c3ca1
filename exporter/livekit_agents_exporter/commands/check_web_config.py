"""``check-web-config FILE``: validate a web configuration file before deploying it.

Reads the file exactly as ``instrument(..., web_config=FILE)`` and
``--web.config.file FILE`` do, certificates and keys included, and prints what it
would serve; exit code 0 when usable, 2 with one line naming the file and the key
otherwise. Serving commands add the flag with ``add_web_config_argument``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..cli import UsageError
from ..config_file import ConfigError

if TYPE_CHECKING:  # loading it needs ssl: only when a file is given
    from ..web_config import WebConfig

FLAG = "--web.config.file"


def add_web_config_argument(parser: argparse.ArgumentParser) -> None:
    """The exporter-toolkit flag, for any command that serves /metrics."""
    parser.add_argument(
        FLAG, dest="web_config_file", metavar="FILE", default=None,
        help="exporter-toolkit web configuration file enabling TLS, client certificates and "
             "basic auth for /metrics (see docs/SECURITY_AND_RELIABILITY.md)")


def web_config_from_args(args: argparse.Namespace) -> WebConfig | None:
    """The loaded ``WebConfig`` for ``--web.config.file``, or None; bad files are a UsageError."""
    path = getattr(args, "web_config_file", None)
    if not path:
        return None
    from ..web_config import load_web_config

    try:
        return load_web_config(path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the web configuration file to check")


def run(args: argparse.Namespace) -> int:
    args.web_config_file = args.file
    config = web_config_from_args(args)
    assert config is not None  # the file argument is required
    print(f"{args.file}: OK: {config.describe()}")
    return 0
