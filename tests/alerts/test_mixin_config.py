"""The mixin configuration: its documentation, its example, one file for both commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from livekit_agents_exporter.cli import main
from livekit_agents_exporter.generate import MIXIN_DOC
from livekit_agents_exporter.rules import load_config, render_rules
from livekit_agents_exporter.rules.config import (
    ALERTS_TABLE_BEGIN,
    ALERTS_TABLE_END,
    KEYS_TABLE_BEGIN,
    KEYS_TABLE_END,
    alerts_table,
    keys_table,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / MIXIN_DOC
EXAMPLE = ROOT / "examples" / "mixin.yaml"


def _between(text: str, begin: str, end: str) -> str:
    return text.split(begin, 1)[1].split(end, 1)[0].strip()


def test_doc_tables_are_the_schema() -> None:
    text = DOC.read_text()
    assert _between(text, KEYS_TABLE_BEGIN, KEYS_TABLE_END) == keys_table(), (
        f"{MIXIN_DOC}'s key table is stale: run `make generate`")
    assert _between(text, ALERTS_TABLE_BEGIN, ALERTS_TABLE_END) == alerts_table(), (
        f"{MIXIN_DOC}'s alert table is stale: run `make generate`")


def test_example_renders_rules_and_dashboard_from_one_file(tmp_path: Path) -> None:
    pytest.importorskip("grafana_foundation_sdk")
    config = load_config(EXAMPLE)
    assert config.aggregation_labels == ("region", "namespace")
    assert config.alert("capacity_low").params["headroom_below"] == 0.25
    assert not config.alert("worker_flapping").enabled
    rules, dashboard = tmp_path / "r.yaml", tmp_path / "d.json"
    assert main(["rules", "--config", str(EXAMPLE), "-o", str(rules)]) == 0
    assert main(["dashboard", "--config", str(EXAMPLE), "-o", str(dashboard)]) == 0
    selector = 'job="voice/livekit-agents", env="prod"'
    assert selector in rules.read_text() and "by (region, namespace, agent_name)" in \
        rules.read_text()
    d = json.loads(dashboard.read_text())
    assert (d["uid"], d["title"]) == (config.dashboard_uid, config.dashboard_title)
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    assert any(selector in e for e in exprs)
    assert any('job="voice/livekit-server-log"' in e for e in exprs)
    assert render_rules(config)["groups"]


def test_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("grafana_foundation_sdk")
    code = re.search(r"## From Python\n\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert code, f"{MIXIN_DOC} lost its Python example"
    (tmp_path / "mixin.yaml").write_text(EXAMPLE.read_text())
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(code.group(1), str(DOC), "exec"), scope)  # noqa: S102 - the doc's own example
    assert 'job="demo"' in str(scope["rules_text"])
    assert json.loads(str(scope["dashboard_json"]))["uid"] == "voice-prod-saturation"


@pytest.mark.parametrize("command", ["rules", "dashboard"])
def test_the_docs_error_lines(command: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """Both commands read the file strictly and say so in the documented line."""
    pytest.importorskip("grafana_foundation_sdk")
    path = tmp_path / "mixin.yaml"
    path.write_text("# mine\nselector: 'job=\"a\"'\nserver_target_load: 0.8\n"
                    "selector: 'job=\"b\"'\n")
    assert main([command, "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"livekit-agents-exporter {command}: error: {path}: invalid YAML at line 4, "
                   "column 1: duplicate key 'selector' (first on line 2)"), err
    documented = [line for line in DOC.read_text().splitlines() if "duplicate key" in line]
    assert documented and documented[0].endswith(
        "invalid YAML at line 4, column 1: duplicate key 'selector' (first on line 2)")
