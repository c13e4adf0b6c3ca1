"""``pip install "livekit-agents-exporter[livekit]"`` is all a worker needs.

The README's worker example runs as ``python agent_server.py start`` in a virtual
environment holding that install alone (``make`` builds it under ``.venv-extra/worker``
and passes its Python in ``LKX_WORKER_PYTHON``): its jobs run and are counted exactly,
and none of the tooling's or the tests' packages is there to lean on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker_harness import sim  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]
# the user-script runner and its counting check, shared with tests/user_scripts
sys.path.insert(0, str(ROOT / "tests" / "user_scripts"))
from scripts import EXAMPLES, run_script  # noqa: E402 - needs the path above
from test_examples import dispatch_and_compare  # noqa: E402 - needs the path above

# what the worker's venv must not have: the extras of the tooling and of the tests
NOT_IN_A_WORKER = ("bcrypt", "grafana_foundation_sdk", "pytest", "hypothesis", "matplotlib")


@pytest.fixture(scope="module")
def worker_python() -> str:
    path = os.environ.get("LKX_WORKER_PYTHON")
    if not path:
        message = ("LKX_WORKER_PYTHON not set: run through `make test` (it builds "
                   ".venv-extra/worker with .[livekit] alone)")
        if os.environ.get("LKX_REQUIRE_BINARIES"):
            pytest.fail(message)
        pytest.skip(message)
    path = os.path.abspath(path)  # the scripts run from their own directory
    probe = subprocess.run(
        [path, "-c", "import importlib.util as u, livekit.agents\n"
                     f"print([m for m in {NOT_IN_A_WORKER!r} if u.find_spec(m)])"],
        capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, f"{path} cannot import livekit.agents: {probe.stderr}"
    assert probe.stdout.strip() == "[]", f"{path} has {probe.stdout.strip()} installed"
    return path


async def test_the_readme_worker_runs_and_counts_with_only_the_livekit_extra(
        sim, tmp_path, worker_python):  # noqa: F811 - sim is the fixture imported above
    example = EXAMPLES / "agent_server.py"
    async with run_script(example, sim.url, tmp_path, python=worker_python,
                          extra_env={"PYTHONPATH": str(ROOT / "exporter")}) as script:
        seen = await dispatch_and_compare(sim, script, jobs=2)
    assert seen["livekit_agents_jobs_finished_total"] == 2, seen


def test_basic_auth_in_a_worker_without_the_extra_fails_at_instrument(worker_python, tmp_path):
    """One ConfigError at the instrument() call, naming the extra, before the worker runs."""
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n"
                   "  prometheus: $2b$04$GupFtZiYLhfe7DnFbca87ukeqstijIuxqT8z.SfqiZyYt3cyoKGui\n")
    code = ("from livekit.agents import AgentServer\n"
            "from livekit_agents_exporter import ConfigError, instrument\n"
            "try:\n"
            f"    instrument(AgentServer(), host='127.0.0.1', port=0, web_config={str(web)!r})\n"
            "except ConfigError as exc:\n"
            "    print(exc)\n"
            "else:\n"
            "    raise SystemExit('instrument() accepted basic auth without bcrypt')\n")
    done = subprocess.run([worker_python, "-c", code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT / "exporter")))
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"{web}: basic_auth_users.prometheus: basic auth checks bcrypt "
                           "hashes, which needs the bcrypt package: "
                           'pip install "livekit-agents-exporter[basic-auth]"\n'), done.stdout
