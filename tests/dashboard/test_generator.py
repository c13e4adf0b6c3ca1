"""The generator: committed JSON in sync, SDK schema round trip, the rows the README promises,
and every query accepted by promtool."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import dash_lint as L
import pytest
import yaml
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as dash_m
from grafana_foundation_sdk.models import prometheus as prom_m

from livekit_agents_exporter import metrics as m
from livekit_agents_exporter.dashboard import (
    DEFAULT_UID,
    DashboardOptions,
    build_dashboard,
    parse_matchers,
    render_json,
    to_dict,
)
from livekit_agents_exporter.rules import load_config

REGENERATE = "make generate"


def test_committed_json_matches_the_generator(committed_path: Path) -> None:
    assert committed_path.read_text() == render_json(), (
        f"{committed_path.name} drifted from the generator: run `{REGENERATE}` and commit")


def test_rendering_is_deterministic() -> None:
    assert render_json() == render_json()


def test_json_round_trips_through_the_sdk_model(committed: dict[str, Any]) -> None:
    """Decoding with the SDK's models and encoding again loses and adds nothing."""
    register_default_plugins()
    model = dash_m.Dashboard.from_json(committed)
    assert to_dict(model) == committed
    for panel in model.panels or []:
        if isinstance(panel, dash_m.Panel):
            assert panel.targets, panel.title
            for target in panel.targets:
                assert isinstance(target, prom_m.Dataquery), (panel.title, type(target))


# --- what the README's Dashboard section promises --------------------------------

ROWS = [
    "Fleet capacity at a glance", "Lost dispatches, from livekit-server's log", "Load per worker",
    "Active jobs", "Job requests and refusals",
    "Dispatch latency", "Job duration and failures", "Time spent full", "Job process memory",
    "Worker and exporter health", "Alerts",
]


def test_rows(committed: dict[str, Any]) -> None:
    assert [p["title"] for p in committed["panels"] if p["type"] == "row"] == ROWS


def _row_panels(d: dict[str, Any], row: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    current = None
    for p in d["panels"]:
        if p["type"] == "row":
            current = p["title"]
        elif current == row:
            out.append(p)
    return out


def _exprs(panels: list[dict[str, Any]]) -> str:
    return "\n".join(t["expr"] for p in panels for t in p["targets"])


def test_fleet_row_answers_the_glance_questions(committed: dict[str, Any]) -> None:
    titles = [p["title"] for p in _row_panels(committed, ROWS[0])]
    for wanted in ("Workers registered", "Workers able to take a job", "Workers full",
                   "Headroom vs worker threshold", "Headroom vs server target load"):
        assert wanted in titles
    exprs = _exprs(_row_panels(committed, ROWS[0]))
    assert "$target_load" in exprs and m.series("worker_load_threshold_ratio") in exprs


def test_load_row_has_threshold_and_heatmap(committed: dict[str, Any]) -> None:
    panels = _row_panels(committed, "Load per worker")
    heatmaps = [p for p in panels if p["type"] == "heatmap"]
    assert len(heatmaps) == 1
    target = heatmaps[0]["targets"][0]
    assert target["format"] == "heatmap"
    assert m.BY_SHORT["worker_load_samples_ratio"].name + "_bucket{" in target["expr"]
    assert heatmaps[0]["options"]["calculate"] is False
    assert m.series("worker_load_threshold_ratio") in _exprs(panels)


@pytest.mark.parametrize("row, shorts", [
    ("Active jobs", ["worker_active_jobs"]),
    ("Job requests and refusals", ["job_requests", "job_requests_rejected", "assignment_timeouts"]),
    ("Dispatch latency", ["job_dispatch_latency_seconds"]),
    ("Job duration and failures", ["job_duration_seconds", "jobs_failed"]),
    ("Time spent full", ["worker_full_seconds"]),
    ("Job process memory", ["job_processes_resident_memory_bytes"]),
])
def test_row_reads(row: str, shorts: list[str], committed: dict[str, Any]) -> None:
    exprs = _exprs(_row_panels(committed, row))
    for short in shorts:
        spec = m.BY_SHORT[short]
        name = spec.name + "_bucket" if spec.kind == "histogram" else spec.series_name
        assert name + "{" in exprs, (row, name)


def test_rejections_by_reason_and_latency_percentiles(committed: dict[str, Any]) -> None:
    exprs = _exprs(_row_panels(committed, "Job requests and refusals"))
    assert "reason)" in exprs
    latency = _exprs(_row_panels(committed, "Dispatch latency"))
    for q in ("0.5", "0.9", "0.99"):
        assert f"histogram_quantile({q}," in latency


def test_alert_row_reads_the_pack(committed: dict[str, Any]) -> None:
    exprs = _exprs(_row_panels(committed, "Alerts"))
    assert 'ALERTS{alertname=~"LiveKitAgents.*"' in exprs


def test_dashboard_settings(committed: dict[str, Any]) -> None:
    assert committed["uid"] == DEFAULT_UID == "livekit-agents-saturation"
    assert committed["editable"] is False
    assert {"livekit", "livekit-agents", "saturation"} <= set(committed["tags"])
    assert committed["refresh"] in ("30s", "1m")
    assert committed["time"] == {"from": "now-3h", "to": "now"}
    names = [t["name"] for t in committed["templating"]["list"]]
    assert names == ["datasource", "cluster", "namespace", "job", "agent_name", "instance",
                     "target_load"]
    target_load = committed["templating"]["list"][-1]
    assert target_load["type"] == "textbox" and target_load["query"] == "0.7"
    assert target_load["current"]["value"] == "0.7"


def test_every_range_query_uses_rate_interval(committed: dict[str, Any]) -> None:
    """Belt and braces over target-rate-interval-rule: rate() only over $__rate_interval."""
    for _, _, t in L.targets(committed):
        assert "rate(" not in t["expr"] or "[$__rate_interval]" in t["expr"]
        for window in ("[1m]", "[5m]", "[$__interval]"):
            assert window not in t["expr"]


# --- options --------------------------------------------------------------------------


def test_custom_options_reach_every_query() -> None:
    """The selector reaches every worker query and variable, and the alert queries too
    when its labels are aggregation labels (alerts keep only those)."""
    mixin = load_config(overrides={"aggregation_labels": ["cluster", "namespace", "env", "team"],
                                   "server_log": {"selector": 'env="prod", team!~"test.*"'}})
    options = DashboardOptions(mixin=mixin, title="Voice (prod)", uid="voice-prod",
                               datasource="Prom prod",
                               selector=parse_matchers('env="prod", team!~"test.*"'),
                               target_load=0.6)
    d = to_dict(build_dashboard(options))
    assert (d["title"], d["uid"]) == ("Voice (prod)", "voice-prod")
    ds = d["templating"]["list"][0]
    assert ds["current"]["value"] == "Prom prod"
    assert d["templating"]["list"][-1]["query"] == "0.6"
    variables = L.templates(d)
    queries = [t["expr"] for _, _, t in L.targets(d)]
    queries += [L.template_query(t).split("(", 1)[1].rsplit(",", 1)[0]
                for t in variables if t["type"] == "query"]
    for expr in queries:
        for sel in L.selectors(L.parse(expr, variables)):
            found = [(mt.name, mt.op, mt.value) for mt in L.matchers(sel)]
            assert ("env", L.pp.MatchOp.Equal, "prod") in found, expr
            assert ("team", L.pp.MatchOp.NotRe, "test.*") in found, expr


@pytest.mark.parametrize("kwargs", [
    {"uid": "has space"}, {"uid": "x" * 41}, {"title": " "}, {"target_load": 0},
    {"target_load": 1.5}, {"datasource": ""},
])
def test_bad_options_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DashboardOptions(**kwargs)


# --- promtool accepts every query ---------------------------------------------------


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not found: install the Debian package 'prometheus'"
        if os.environ.get("LKX_REQUIRE_BINARIES"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _as_rules(d: dict[str, Any]) -> dict[str, Any]:
    """Every panel and variable query as a recording rule, variables substituted the way
    Grafana would (All values, a 1m rate interval, a 1h range, target_load)."""
    variables = L.templates(d)
    values = {"__rate_interval": "1m", "__range": "1h", "__interval": "15s"}
    rules = []
    for p, i, t in L.targets(d):
        rules.append({"record": f"dashboard:panel_{p['id']}_{t.get('refId', i)}",
                      "expr": L.expand_variables(t["expr"], variables, values)})
    for t in variables:
        if t["type"] == "query":
            head = L.template_query(t).split("(", 1)[1].rsplit(",", 1)[0]
            rules.append({"record": f"dashboard:variable_{t['name']}",
                          "expr": L.expand_variables(head, variables, values)})
    return {"groups": [{"name": "dashboard-queries", "rules": rules}]}


@pytest.mark.parametrize("options", [
    DashboardOptions(),
    DashboardOptions(selector=parse_matchers('env="prod", region=~"eu-.*"')),
], ids=["committed", "with-selector"])
def test_promtool_accepts_every_query(options: DashboardOptions, tmp_path: Path) -> None:
    promtool = _promtool()
    d = to_dict(build_dashboard(options))
    rules = _as_rules(d)
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=60)
    titles = {f"dashboard:panel_{p['id']}": p["title"] for p in L.data_panels(d)}
    assert result.returncode == 0, (
        f"promtool rejected a query:\n{result.stdout}\n{result.stderr}\npanels: "
        f"{json.dumps(titles, indent=1)}")
    assert f"SUCCESS: {len(rules['groups'][0]['rules'])} rules found" in result.stdout


def test_server_log_row_sits_next_to_the_capacity_row(committed: dict[str, Any]) -> None:
    """Lost dispatches by cause and the SLO burn, from the server log's series, right under
    the saturation stats; each stat says when the server log is not collected."""
    panels = _row_panels(committed, "Lost dispatches, from livekit-server's log")
    exprs = _exprs(panels)
    assert m.series("server_dispatches_lost") in exprs and m.series("server_dispatches") in exprs
    assert any("cause" in p["title"] for p in panels) and any("SLO" in p["title"] for p in panels)
    stats = [p for p in panels if p["type"] == "stat"]
    assert stats and all(p["fieldConfig"]["defaults"]["noValue"] == "no server log"
                         for p in stats)
