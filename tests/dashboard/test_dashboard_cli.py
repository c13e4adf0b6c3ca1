"""``livekit-agents-exporter dashboard``: output, options and one-line user errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from livekit_agents_exporter.cli import main
from livekit_agents_exporter.dashboard import render_json


def test_stdout_is_the_committed_dashboard(capsys: pytest.CaptureFixture[str],
                                           committed_path: Path) -> None:
    assert main(["dashboard"]) == 0
    assert capsys.readouterr().out == committed_path.read_text() == render_json()


def test_output_file(tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    assert main(["dashboard", "-o", str(out)]) == 0
    assert out.read_text() == render_json()
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]  # no temporary file left


def test_options(tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    assert main(["dashboard", "-o", str(out), "--title", "Voice prod", "--uid", "voice-prod",
                 "--datasource", "Prometheus (prod)", "--selector", '{env="prod"}',
                 "--target-load", "0.65"]) == 0
    d = json.loads(out.read_text())
    assert (d["title"], d["uid"]) == ("Voice prod", "voice-prod")
    assert d["templating"]["list"][0]["current"]["value"] == "Prometheus (prod)"
    assert d["templating"]["list"][-1]["query"] == "0.65"
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    worker = [e for e in exprs if "server_dispatch" not in e and "ALERTS" not in e]
    assert worker and all('env="prod"' in e or "vector(" in e for e in worker), worker
    # the flag replaces the mixin's worker selector; the server log keeps its own
    assert not any('job="livekit-agents"' in e for e in exprs)
    server_log = [e for e in exprs if "server_dispatch" in e]
    assert server_log and all('job="livekit-server-log"' in e for e in server_log), server_log


MIXIN = """\
selector: 'job="voice", env=~"prod|staging"'
aggregation_labels: [region]
worker_labels: [pod]
server_target_load: 0.6
dashboard_uid: voice-saturation
dashboard_title: Voice / saturation
"""


def test_config_file_is_the_one_rules_reads(tmp_path: Path) -> None:
    """One mixin file: the dashboard takes the selector, the aggregation and worker labels,
    the target load and its identity from it, as `rules --config` takes the selector and
    the aggregation labels."""
    config = tmp_path / "mixin.yaml"
    config.write_text(MIXIN)
    out, rules = tmp_path / "d.json", tmp_path / "rules.yaml"
    assert main(["dashboard", "--config", str(config), "-o", str(out)]) == 0
    assert main(["rules", "--config", str(config), "-o", str(rules)]) == 0
    d = json.loads(out.read_text())
    assert (d["title"], d["uid"]) == ("Voice / saturation", "voice-saturation")
    assert d["templating"]["list"][-1]["query"] == "0.6"
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    raw = [e for e in exprs if "livekit_agents_worker" in e]
    assert raw and all('job="voice", env=~"prod|staging"' in e for e in raw), raw
    assert any("sum by (region, agent_name) (" in e for e in exprs)
    # one series per worker process, by the same labels as the rules' deduplication
    assert any("max by (region, pod, agent_name) (" in e for e in exprs)
    assert not any("cluster, namespace, agent_name" in e for e in exprs)
    rule_text = rules.read_text()
    assert 'job="voice", env=~"prod|staging"' in rule_text
    assert "by (region, agent_name)" in rule_text
    assert "max by (region, pod, agent_name) (" in rule_text


def test_bad_config_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mixin.yaml"
    config.write_text("selector: 'job=voice'\n")
    assert main(["dashboard", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{config}: selector: cannot parse label matchers at 'job=voice'" in err, err


@pytest.mark.parametrize("argv, message", [
    (["--selector", "env=prod"], "--selector: cannot parse label matchers at 'env=prod'"),
    (["--selector", 'env="prod" team="a"'], "--selector: cannot parse"),
    (["--selector", '__name__="up"'], "__name__"),
    (["--uid", "no spaces please"], "uid 'no spaces please'"),
    (["--target-load", "1.5"], "target load 1.5 must be in (0, 1]"),
    (["--title", ""], "the title must not be empty"),
    (["-o", "/nonexistent-dir/d.json"], "cannot write /nonexistent-dir/d.json"),
])
def test_user_errors_are_one_line_exit_2(argv: list[str], message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livekit-agents-exporter dashboard: error: ")
    assert message in lines[0]


def test_output_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "-o", str(tmp_path)]) == 2
    assert "it is a directory" in capsys.readouterr().err


def test_unwritable_destination(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"  # a path under a regular file cannot be written, even by root
    blocker.write_text("")
    assert main(["dashboard", "-o", str(blocker / "d.json")]) == 2
    assert "Not a directory" in capsys.readouterr().err


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d.json"
    out.write_text("old")

    def refuse(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    assert main(["dashboard", "-o", str(out)]) == 2
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]
    assert "No space left on device" in capsys.readouterr().err


def test_generator_works_without_livekit_agents() -> None:
    """The command imports neither livekit.agents nor the exporter's SDK hooks."""
    import subprocess
    import sys

    code = ("import sys; from livekit_agents_exporter.cli import main; "
            "import io, contextlib; buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf): rc = main(['dashboard'])\n"
            "assert rc == 0 and buf.getvalue()\n"
            "bad = [m for m in sys.modules if m.startswith('livekit.') or m == 'livekit']\n"
            "assert not bad, bad")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
