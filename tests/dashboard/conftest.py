"""Fixtures of the dashboard tests: the committed JSON and its lint exclusions.

The live-query fixtures (Prometheus scraping a fleet) are in ``dash_live``; the one
function that decides what Prometheus scrapes is ``dash_live.exposition_source``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dash_lint
import pytest

from livekit_agents_exporter.dashboard import COMMITTED_PATH

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def committed_path() -> Path:
    return ROOT / COMMITTED_PATH


@pytest.fixture(scope="session")
def committed(committed_path: Path) -> dict[str, Any]:
    return json.loads(committed_path.read_text())


@pytest.fixture(scope="session")
def exclusions(committed_path: Path) -> list[dash_lint.Exclusion]:
    return dash_lint.load_exclusions(committed_path.parent / ".lint")
