"""Whether livekit-agents is installed, and the one sentence saying how to get it when not.

The rule and dashboard generators work without the SDK, so the package never imports it
at import time; what needs it (``instrument()``, the demo) asks here first.
"""

from __future__ import annotations

import importlib.util

INSTALL = 'pip install "livekit-agents-exporter[livekit]"'


class MissingSDKError(ImportError):
    """livekit-agents is not installed (an ImportError, so ``except ImportError`` still works)."""


def require_sdk(what: str) -> None:
    """Raise ``MissingSDKError`` naming the extra when livekit-agents is not importable."""
    try:
        found = importlib.util.find_spec("livekit.agents") is not None
    except ModuleNotFoundError:  # no ``livekit`` namespace at all
        found = False
    if not found:
        raise MissingSDKError(f"{what} needs livekit-agents, which is not installed: {INSTALL}")
