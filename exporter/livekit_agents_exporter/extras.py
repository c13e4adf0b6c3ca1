"""The optional extras: which one brings what, and the one sentence when one is missing.

A worker installs ``livekit-agents-exporter[livekit]`` (plus ``basic-auth`` when its web
config has ``basic_auth_users``); everything else the package ships is tooling whose
third-party needs sit behind an extra of its own (README, "What a worker installs").
"""

from __future__ import annotations

import importlib.util
import sys

DISTRIBUTION = "livekit-agents-exporter"

# extra -> (the module it makes importable, the distribution that provides it)
EXTRAS: dict[str, tuple[str, str]] = {
    "livekit": ("livekit.agents", "livekit-agents"),
    "basic-auth": ("bcrypt", "bcrypt"),
    "dashboard": ("grafana_foundation_sdk", "grafana-foundation-sdk"),
}
# the extra installs nothing below this Python (its requirement carries the marker)
_MIN_PYTHON = {"dashboard": (3, 11)}


class MissingExtraError(ImportError):
    """An optional extra is not installed (an ImportError, so ``except ImportError`` works)."""


class MissingSDKError(MissingExtraError):
    """livekit-agents is not installed: what ``instrument()``, the demo and the simulator need."""


def install_command(extra: str) -> str:
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def installed(extra: str) -> bool:
    """Whether the module the extra brings can be imported (without importing it)."""
    module = EXTRAS[extra][0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package (``livekit``) is missing too
        return False


def require(extra: str, what: str) -> None:
    """Raise ``MissingExtraError`` naming the install command when ``extra`` is missing."""
    if installed(extra):
        return
    package = EXTRAS[extra][1]
    needs = _MIN_PYTHON.get(extra)
    if needs is not None and sys.version_info < needs:
        raise MissingExtraError(f"{what} needs {package}, which needs Python "
                                f"{needs[0]}.{needs[1]} or later (this is "
                                f"{sys.version_info[0]}.{sys.version_info[1]})")
    error = MissingSDKError if extra == "livekit" else MissingExtraError
    raise error(f"{what} needs {package}, which is not installed: {install_command(extra)}")
