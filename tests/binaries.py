"""Real binaries the tests drive (Prometheus, promtool, Alertmanager)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_binary(name: str, package: str) -> str:
    """Path of a real binary the test drives; skip (or fail in CI) when it is missing."""
    path = shutil.which(name)
    if path:
        return path
    message = (f"{name} not found: install the Debian package '{package}' "
               f"(apt-get install {package})")
    if os.environ.get("LKX_REQUIRE_BINARIES"):
        pytest.fail(message)
    pytest.skip(message)
