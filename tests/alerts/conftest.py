"""Alert pack tests need the real promtool."""

from __future__ import annotations

import pytest

from binaries import require_binary


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; skipped when missing, a failure in CI (LKX_REQUIRE_BINARIES=1)."""
    return require_binary("promtool", "prometheus")
