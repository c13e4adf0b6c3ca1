"""Every code block of the README that a user would run is executed by a test.

Each block is listed here with the test that runs it; a new block without an entry fails
``test_every_readme_block_is_run_by_a_test``, and an entry whose test is gone fails too.
The blocks no other suite runs are run here, as written.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from binaries import require_binary

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"(?:<!-- (\w+): ([^>]*?) -->\n)?```(\w*)\n(.*?)```", re.S)
HERE = "tests/docs/test_readme_blocks.py"

# the first line of a block (up to its comment) -> the test that runs it
RUN_BY = {
    "make demo": f"{HERE}::test_make_demo_runs_the_demo_command",
    "make test": f"{HERE}::test_make_test_runs_the_suite_on_both_sdk_ends",
    'pip install "livekit-agents-exporter[livekit]"':
        f"{HERE}::test_the_install_command_names_this_package_and_its_extra",
    '"""An AgentServer worker': "tests/user_scripts/test_examples.py",
    '"""A worker built by cli.run_app': "tests/user_scripts/test_examples.py",
    "python -m livekit_agents_exporter.simulator --port 7880 &":
        "tests/user_scripts/test_readme_recipe.py",
    'instrument(server, web_config="/etc/livekit-agents-exporter/web.yml")':
        "tests/security/test_endpoint.py",
    "livekit-agents-exporter check-web-config /etc/livekit-agents-exporter/web.yml":
        f"{HERE}::test_check_web_config_block_runs_as_written",
    "livekit-agents-exporter server-log":
        "tests/server_log/test_mtail_program.py::test_readme_pipeline_counts_a_log_as_written",
    "livekit-agents-exporter rules > livekit-agents.rules.yaml":
        f"{HERE}::test_rules_block_runs_as_written",
    "PYTHONPATH=exporter python tests/e2e/report.py": "tests/e2e/test_pager_path.py",
}


def _blocks() -> list[tuple[str, str]]:
    """(language, body) of every fenced block in the README."""
    return [(lang, body) for _, _, lang, body in BLOCK.findall(README.read_text())]


def _key(body: str) -> str | None:
    first = body.strip().splitlines()[0]
    return next((k for k in RUN_BY if first.startswith(k)), None)


def _block(key: str) -> str:
    [body] = [b for _, b in _blocks() if _key(b) == key]
    return body


def test_every_readme_block_is_run_by_a_test():
    unlisted = [body.strip().splitlines()[0] for _, body in _blocks() if _key(body) is None]
    assert not unlisted, f"README blocks no test runs (add one to RUN_BY): {unlisted}"
    for key, test in RUN_BY.items():
        path, _, name = test.partition("::")
        assert (ROOT / path).exists(), f"{key!r}: {path} is gone"
        if name:
            assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), (key, test)
        assert any(_key(b) == key for _, b in _blocks()), f"{key!r} is no longer in the README"


def test_make_demo_runs_the_demo_command():
    """``make demo`` is the demo CLI in the project's venv, which tests/demo runs."""
    make = require_binary("make", "make")
    out = subprocess.run([make, "-n", "demo"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].strip().endswith("livekit-agents-exporter demo"), \
        out.stdout


def test_make_test_runs_the_suite_on_both_sdk_ends():
    """``make test`` runs pytest in both SDK venvs (run for real it would run this test)."""
    out = subprocess.run([require_binary("make", "make"), "-n", "test"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    runs = [line for line in out.stdout.splitlines() if "-m pytest" in line]
    makefile = (ROOT / "Makefile").read_text()
    new, old = (re.search(rf"^{v} \?= (\S+)", makefile, re.M) for v in ("SDK_NEW", "SDK_OLD"))
    assert new and old, "Makefile lost SDK_NEW / SDK_OLD"
    assert any(f"sdk-{new.group(1)}/" in r for r in runs), runs
    assert any(f"sdk-{old.group(1)}/" in r and "not sdk_independent" in r for r in runs), runs
    assert f"livekit-agents {new.group(1)}" in README.read_text()


def test_the_install_command_names_this_package_and_its_extra():
    """Without network the install cannot run here; what it names must be this project's
    distribution and a declared extra that brings livekit-agents (the nosdk venv of
    tests/packaging is the same install without the extra)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    body = _block('pip install "livekit-agents-exporter[livekit]"')
    for name, extra in re.findall(r'pip install "([\w.-]+)\[(\w+)\]"', body):
        assert name in (project["name"], "."), name
        deps = project["optional-dependencies"][extra]
        assert any(d.startswith("livekit-agents") for d in deps), (extra, deps)


def _cli(line: str) -> str:
    return line.replace("livekit-agents-exporter",
                        f"{sys.executable} -m livekit_agents_exporter")


def test_check_web_config_block_runs_as_written(tmp_path):
    """The command as written, on a web config at the path it names (the formats and the
    errors are tests/security/test_web_config.py's; this is the README's command line)."""
    body = _block("livekit-agents-exporter check-web-config /etc/livekit-agents-exporter/web.yml")
    web = tmp_path / "web.yml"
    web.write_text("# plain HTTP: no tls_server_config, no basic_auth_users\n")
    command = _cli(body.strip().replace("/etc/livekit-agents-exporter/web.yml", str(web)))
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{web}: OK: plain HTTP (no tls_server_config); no basic auth", \
        out.stdout


def test_rules_block_runs_as_written(tmp_path):
    """Every line of the README's ``rules`` block, in a scratch directory; the config file
    the third line reads is the one the fourth line prints."""
    promtool = require_binary("promtool", "prometheus")
    lines = [ln for ln in _block("livekit-agents-exporter rules > livekit-agents.rules.yaml")
             .splitlines() if ln.strip()]
    config_line = next(ln for ln in lines if "--example-config" in ln)
    example = subprocess.run(["bash", "-c", _cli(config_line)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert example.returncode == 0, example.stderr
    (tmp_path / "my-alerts.yaml").write_text(example.stdout)
    for line in lines:
        out = subprocess.run(["bash", "-c", _cli(line)], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, f"{line}: {out.stderr}"
    check = subprocess.run([promtool, "check", "rules", "livekit-agents.rules.yaml"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "kind: PrometheusRule" in (tmp_path / "prometheusrule.yaml").read_text()
