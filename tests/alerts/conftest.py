"""Alert pack tests: the real promtool, and the scenario builders next to this file."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS_DIR = ROOT / "alerts"


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


def run_promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def write_yaml(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=10_000))
    return path
