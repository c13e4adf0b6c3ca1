"""Fixtures of the attack suite: the simulator and a throwaway PKI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "security"))

from pki import Pki  # noqa: E402 - needs the path above

from worker_harness import sim  # noqa: E402,F401 - the fixture


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))
