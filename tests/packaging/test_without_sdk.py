"""Without the ``livekit`` extra: the package imports, and what needs the SDK says which extra.

Runs in a virtual environment that has the package's core dependencies and no
livekit-agents (``make`` builds it under ``.venv-extra/nosdk`` and passes its Python in
``LKX_NOSDK_PYTHON``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HINT = 'pip install "livekit-agents-exporter[livekit]"'


@pytest.fixture(scope="module")
def python() -> str:
    path = os.environ.get("LKX_NOSDK_PYTHON")
    if not path:
        message = "LKX_NOSDK_PYTHON not set: run through `make test` (it builds .venv-extra/nosdk)"
        if os.environ.get("LKX_REQUIRE_BINARIES"):
            pytest.fail(message)
        pytest.skip(message)
    probe = subprocess.run([path, "-c", "import livekit.agents"], capture_output=True)
    assert probe.returncode != 0, f"{path} has livekit-agents installed: not an SDK-less venv"
    return path


def _run(python: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "exporter"))
    return subprocess.run([python, *args], capture_output=True, text=True, env=env, timeout=120)


def test_package_imports_and_generators_work_without_the_sdk(python):
    done = _run(python, "-c", "import livekit_agents_exporter as m; print(m.__version__)")
    assert done.returncode == 0, done.stderr
    rules = _run(python, "-m", "livekit_agents_exporter", "rules")
    assert rules.returncode == 0 and "LiveKitAgentsNoCapacity" in rules.stdout, rules.stderr


def test_instrument_names_the_extra(python):
    done = _run(python, "-c", "from livekit_agents_exporter import instrument")
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1
    assert last == ("livekit_agents_exporter.sdk_installed.MissingSDKError: "
                    "livekit_agents_exporter.instrument needs livekit-agents, which is not "
                    f"installed: {HINT}"), last
    assert "ModuleNotFoundError" not in done.stderr, done.stderr


def test_demo_fails_with_one_sentence(python):
    done = _run(python, "-m", "livekit_agents_exporter", "demo")
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr == ("livekit-agents-exporter demo: error: the demo needs livekit-agents, "
                           f"which is not installed: {HINT}\n"), done.stderr
