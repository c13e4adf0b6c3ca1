"""Suite-wide helpers: binaries the tests drive, and SDK-independent marking."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SDK_INDEPENDENT_DIRS = ("alerts", "dashboard")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if any(d in parts for d in SDK_INDEPENDENT_DIRS):
            item.add_marker(pytest.mark.sdk_independent)


def require_binary(name: str, package: str) -> str:
    """Path of a real binary the test drives; skip (or fail in CI) when it is missing."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found: install the Debian package '{package}' (apt-get install {package})"
    if os.environ.get("LKX_REQUIRE_BINARIES"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def real_binary():
    """``require_binary`` for test modules, which cannot import a conftest by name reliably."""
    return require_binary
