"""The Grafana saturation dashboard, built with grafana-foundation-sdk's Python builders.

    from livekit_agents_exporter.dashboard import DashboardOptions, render_json
    text = render_json(DashboardOptions(selector=('env="prod"',)))

The builders need ``grafana-foundation-sdk`` (the ``dashboard`` extra), never
livekit-agents; they are imported lazily, so ``options`` and ``queries`` work without it.
The committed ``grafana/livekit-agents-saturation.json`` is ``render_json()``.
"""

from __future__ import annotations

from typing import Any

from ..prometheus_syntax import SelectorError, parse_matchers
from .options import (
    COMMITTED_PATH,
    DEFAULT_TARGET_LOAD,
    DEFAULT_TITLE,
    DEFAULT_UID,
    DashboardOptions,
)

__all__ = [
    "COMMITTED_PATH",
    "DEFAULT_TARGET_LOAD",
    "DEFAULT_TITLE",
    "DEFAULT_UID",
    "DashboardOptions",
    "SelectorError",
    "build_dashboard",
    "parse_matchers",
    "render_json",
    "to_dict",
]

_LAZY = {"build_dashboard", "render_json", "to_dict"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
