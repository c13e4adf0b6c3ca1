"""A protocol-faithful LiveKit dispatch simulator, for the demo and the tests.

LiveKit's server cannot run here, and the exporter's promise is about what crosses
the worker's connection, so the simulator speaks the real worker protocol and
follows the open-source server's dispatch rules (``dispatch.py``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# name -> module; loaded on first use, so that ``python -m livekit_agents_exporter.simulator``
# can say in one line that livekit-agents (whose protocol the server speaks) is missing
_LAZY = {
    "DispatchResult": "server", "OfferAnswer": "server", "Simulator": "server",
    "SimulatorConfig": "server", "RateProfile": "traffic", "TrafficGenerator": "traffic",
    "OUTCOMES": "truth", "Truth": "truth", "WorkerTruth": "truth",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
