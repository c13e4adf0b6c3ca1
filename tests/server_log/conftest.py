"""The server-log suite drives the real mtail (Debian package ``mtail``) and Prometheus."""

from __future__ import annotations

from pathlib import Path

import pytest

from binaries import require_binary

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="session")
def mtail() -> str:
    return require_binary("mtail", "mtail")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return require_binary("prometheus", "prometheus")
