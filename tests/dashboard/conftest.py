"""Fixtures of the dashboard tests: the committed JSON, its lint exclusions, and ``live``
(a real Prometheus scraping a fleet, started once per session).

What Prometheus scrapes is decided by one function, ``dash_live.exposition_source``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dash_lint
import dash_live
import pytest
import yaml

from binaries import require_binary
from livekit_agents_exporter.dashboard import COMMITTED_PATH
from livekit_agents_exporter.prometheus_runner import Prometheus

ROOT = Path(__file__).resolve().parents[2]

if sys.version_info < (3, 11):  # grafana-foundation-sdk requires Python 3.11+
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def committed_path() -> Path:
    return ROOT / COMMITTED_PATH


@pytest.fixture(scope="session")
def committed(committed_path: Path) -> dict[str, Any]:
    return json.loads(committed_path.read_text())


@pytest.fixture(scope="session")
def exclusions(committed_path: Path) -> list[dash_lint.Exclusion]:
    return dash_lint.load_exclusions(committed_path.parent / ".lint")


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dash_live.Live]:
    binary = require_binary("prometheus", "prometheus")
    rules = tmp_path_factory.mktemp("rules") / "rules.yaml"
    rules.write_text(yaml.safe_dump(dash_live.rule_document(), sort_keys=False))
    with dash_live.exposition_source() as groups:
        interval = f"{dash_live.SCRAPE_INTERVAL_S}s"
        prom = Prometheus(groups, [rules], binary=binary, scrape_interval=interval,
                          evaluation_interval=interval).start()
        try:
            expected = sum(len(g.targets) for g in groups)
            deadline = time.monotonic() + 30
            while prom.targets_up() < expected:
                if time.monotonic() > deadline:
                    pytest.fail(f"only {prom.targets_up()} of {expected} targets up after 30 s")
                time.sleep(0.2)
            yield dash_live.Live(prom, groups, time.time())
        finally:
            prom.stop()
