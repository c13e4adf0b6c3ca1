"""Suite-wide: tests that do not touch livekit-agents run once, not per SDK version."""

from __future__ import annotations

from pathlib import Path

import pytest

SDK_INDEPENDENT_DIRS = ("alerts", "dashboard")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if any(d in parts for d in SDK_INDEPENDENT_DIRS):
            item.add_marker(pytest.mark.sdk_independent)
