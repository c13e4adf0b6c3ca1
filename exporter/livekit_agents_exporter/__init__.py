"""Prometheus metrics for LiveKit Agents workers: saturation you can see and page on.

    from livekit_agents_exporter import instrument
    instrument(server)          # before server.run() / cli.run_app(...)

Every name is imported on first use: ``import livekit_agents_exporter`` loads this file
alone, ``instrument`` loads what a worker needs and nothing of the tooling (rules,
dashboard, simulator, demo), and the rule and dashboard generators work without
livekit-agents installed (README, "What a worker installs").
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "DEFAULT_PORT",
    "Exporter",
    "ExporterStartError",
    "InstrumentationError",
    "__version__",
    "instrument",
    "load_web_config",
]

_LAZY = {
    "instrument": "instrumentation",
    "Exporter": "instrumentation",
    "InstrumentationError": "errors",
    "DEFAULT_PORT": "http_server",
    "ExporterStartError": "http_server",
    "ConfigError": "config_file",
    "load_web_config": "web_config",
    "__version__": "version",
}


# these need livekit-agents: without it they fail with one sentence naming the extra
_NEED_SDK = {"instrument", "Exporter"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        if name in _NEED_SDK:
            from .extras import require

            require("livekit", f"livekit_agents_exporter.{name}")
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
