"""Alert pack tests need the real promtool."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; skipped when missing, a failure in CI (LKX_REQUIRE_BINARIES=1)."""
    path = shutil.which("promtool")
    if path:
        return path
    message = "promtool not found: install the Debian package 'prometheus'"
    if os.environ.get("LKX_REQUIRE_BINARIES"):
        pytest.fail(message)
    pytest.skip(message)
