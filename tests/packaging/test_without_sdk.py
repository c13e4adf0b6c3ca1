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
    path = os.path.abspath(path)
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
    assert last == ("livekit_agents_exporter.extras.MissingSDKError: "
                    "livekit_agents_exporter.instrument needs livekit-agents, which is not "
                    f"installed: {HINT}"), last
    assert "ModuleNotFoundError" not in done.stderr, done.stderr


def test_demo_fails_with_one_sentence(python):
    done = _run(python, "-m", "livekit_agents_exporter", "demo")
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr == ("livekit-agents-exporter demo: error: the demo needs livekit-agents, "
                           f"which is not installed: {HINT}\n"), done.stderr


def test_simulator_fails_with_one_sentence(python):
    done = _run(python, "-m", "livekit_agents_exporter.simulator", "--port", "0")
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr == ("simulator: the simulator needs livekit-agents, which is not "
                           f"installed: {HINT}\n"), done.stderr


# a bcrypt hash of "pw" at cost 4: the file is valid, only the package to check it is missing
_WEB_CONFIG = ("basic_auth_users:\n"
               "  prometheus: $2b$04$GupFtZiYLhfe7DnFbca87ukeqstijIuxqT8z.SfqiZyYt3cyoKGui\n")
BASIC_AUTH_HINT = 'pip install "livekit-agents-exporter[basic-auth]"'


def test_basic_auth_without_the_extra_is_one_config_error(python, tmp_path):
    probe = _run(python, "-c", "import bcrypt")
    assert probe.returncode != 0, f"{python} has bcrypt installed: not a core-only venv"
    web = tmp_path / "web.yml"
    web.write_text(_WEB_CONFIG)
    done = _run(python, "-m", "livekit_agents_exporter", "check-web-config", str(web))
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr == (f"livekit-agents-exporter check-web-config: error: {web}: "
                           "basic_auth_users.prometheus: basic auth checks bcrypt hashes, which "
                           f"needs the bcrypt package: {BASIC_AUTH_HINT}\n"), done.stderr
    # the same sentence, as the ConfigError instrument() raises (load_web_config is its reader)
    load = _run(python, "-c", "from livekit_agents_exporter import ConfigError, load_web_config\n"
                f"try:\n    load_web_config({str(web)!r})\n"
                "except ConfigError as exc:\n    print(exc)")
    assert load.returncode == 0 and load.stdout.strip().endswith(BASIC_AUTH_HINT), load


def test_tls_and_plain_web_configs_need_no_extra(python, tmp_path):
    web = tmp_path / "web.yml"
    web.write_text("http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n")
    done = _run(python, "-m", "livekit_agents_exporter", "check-web-config", str(web))
    assert done.returncode == 0, done.stderr
    assert "no basic auth" in done.stdout, done.stdout


def test_each_tooling_command_names_its_extra_or_runs(python):
    """The table of the README's "What a worker installs": core-only commands run, the
    others fail with one sentence naming the extra."""
    dashboard = _run(python, "-m", "livekit_agents_exporter", "dashboard")
    assert dashboard.returncode == 2, (dashboard.returncode, dashboard.stderr)
    assert dashboard.stderr == ("livekit-agents-exporter dashboard: error: the dashboard "
                                "generator needs grafana-foundation-sdk, which is not installed: "
                                'pip install "livekit-agents-exporter[dashboard]"\n'), \
        dashboard.stderr
    metrics = _run(python, "-m", "livekit_agents_exporter", "metrics")
    assert metrics.returncode == 0 and "livekit_agents_worker_load_ratio" in metrics.stdout, \
        metrics.stderr
    server_log = subprocess.run(
        [python, "-m", "livekit_agents_exporter", "server-log", "--heartbeat", "0"],
        input="", capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT / "exporter")))
    assert server_log.returncode == 0, server_log.stderr
