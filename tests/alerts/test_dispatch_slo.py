"""The server-log rules (lost dispatches, the dispatch SLO, the log pipeline's heartbeat)
under the real promtool, at their boundaries; and their configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alert_files import run_promtool, write_yaml

from livekit_agents_exporter.rules import ConfigError, load_config, render_rules
from livekit_agents_exporter.rules.dispatch_slo import ALERT_GROUP, RECORDING_GROUP, rule_groups

SEL = 'job="livekit-server-log", instance="mtail:3903", cluster="eu"'
LOST = "livekit_agents_server_dispatches_lost_total"
ALL = "livekit_agents_server_dispatches_total"
RUNBOOK = ("https://github.com/livekit-agents-exporter/livekit-agents-exporter/blob/main/alerts/"
           "runbooks.md#")


def _run(promtool: str, tmp_path: Path, tests: list[dict[str, Any]],
         overrides: dict[str, Any] | None = None) -> None:
    config = load_config(overrides=overrides or {})
    document = {"groups": rule_groups(config)}
    write_yaml(tmp_path / "rules.yaml", document)
    write_yaml(tmp_path / "test.yaml", {
        "rule_files": ["rules.yaml"], "evaluation_interval": "1m",
        "group_eval_order": [g["name"] for g in document["groups"]], "tests": tests})
    result = run_promtool(promtool, "test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _alerts(name: str, at: str, found: list[dict[str, Any]]) -> dict[str, Any]:
    return {"eval_time": at, "alertname": name, "exp_alerts": found}


def _burn(name: str, value: str, window: str) -> dict[str, Any]:
    severity = "critical" if name.endswith("FastBurn") else "warning"
    tail = ("at this rate the 30-day budget is gone within days." if severity == "critical"
            else "the 30-day budget will not last the month.")
    return {"exp_labels": {"severity": severity, "concern": "capacity", "cluster": "eu",
                           "agent_name": "support"},
            "exp_annotations": {
                "summary": ("The dispatch-success error budget is burning fast." if
                            severity == "critical" else
                            "The dispatch-success error budget is burning steadily."),
                "description": f'{value} of the dispatches to agent "support" got no agent over '
                               f"the last {window} (objective 99.9%, error budget 0.1%): {tail}",
                "runbook_url": RUNBOOK + name.lower()}}


def test_lost_dispatch_pages_at_the_first_loss_with_its_cause(promtool: str,
                                                             tmp_path: Path) -> None:
    """The cause's series appears with its first loss (mtail has no series before): the page
    fires at that evaluation, stays while the loss is in the window, resolves after it, and
    fires again at the next loss."""
    description = ('livekit-server logged 1 dispatch to agent "support" in cluster eu that got '
                   "no agent in the last 5m, cause no_capacity: every node's workers were full "
                   "or loaded at the server's target_load. Those calls were dropped.")
    firing = [{"exp_labels": {"severity": "critical", "concern": "capacity", "cluster": "eu",
                              "agent_name": "support",
                              "cause": "no_capacity"},
               "exp_annotations": {
                   "summary": "Dispatches to an agent got no agent, as livekit-server logged "
                              "them.",
                   "description": description,
                   "runbook_url": RUNBOOK + "livekitagentsdispatcheslost"}}]
    name = "LiveKitAgentsDispatchesLost"
    _run(promtool, tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": f'{LOST}{{{SEL}, agent_name="support", cause="no_capacity"}}',
             "values": "_x5 1x5 2x5"},
            {"series": f'{ALL}{{{SEL}, agent_name="support"}}', "values": "0+10x16"}],
        "alert_rule_test": [
            _alerts(name, "4m", []), _alerts(name, "5m", firing), _alerts(name, "9m", firing),
            _alerts(name, "10m", []), _alerts(name, "11m", firing)],
    }])


def test_fast_burn_pages_on_the_1h_window(promtool: str, tmp_path: Path) -> None:
    """3.3% lost (burn 33x) after 7 h of healthy traffic: the 1h ratio crosses 14.4 x 0.1% when
    52 of the hour's 3600 dispatches were lost (26 min in), firing 2 min later."""
    name = "LiveKitAgentsDispatchSloFastBurn"
    _run(promtool, tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": f'{LOST}{{{SEL}, agent_name="support", cause="no_capacity"}}',
             "values": "0x420 2+2x100"},
            {"series": f'{ALL}{{{SEL}, agent_name="support"}}', "values": "0+60x520"}],
        "alert_rule_test": [
            _alerts(name, "447m", []),
            _alerts(name, "448m", [_burn(name, "1.556%", "hour or six")]),
            _alerts("LiveKitAgentsDispatchesLost", "300m", [])],
    }])


def test_fast_burn_pages_on_the_6h_window(promtool: str, tmp_path: Path) -> None:
    """1.1% lost (burn 11x: under the 1h pair's 14.4, over the 6h pair's 6): fires when the 6h
    ratio passes 0.6% (195 of 32400 dispatches, 195 min in), firing 2 min later."""
    name = "LiveKitAgentsDispatchSloFastBurn"
    _run(promtool, tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": f'{LOST}{{{SEL}, agent_name="support", cause="all_refused"}}',
             "values": "0x420 1+1x300"},
            {"series": f'{ALL}{{{SEL}, agent_name="support"}}', "values": "0+90x720"}],
        "alert_rule_test": [
            _alerts(name, "616m", []),
            _alerts(name, "617m", [_burn(name, "0.608%", "hour or six")])],
    }])


def test_slow_burn_tickets_and_fast_burn_stays_silent(promtool: str, tmp_path: Path) -> None:
    """0.5% lost (burn 5x): above the 1d pair's 3x, below both paging pairs."""
    slow, fast = "LiveKitAgentsDispatchSloSlowBurn", "LiveKitAgentsDispatchSloFastBurn"
    _run(promtool, tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": f'{LOST}{{{SEL}, agent_name="support", cause="no_capacity"}}',
             "values": "0+1x400"},
            {"series": f'{ALL}{{{SEL}, agent_name="support"}}', "values": "0+200x400"}],
        "alert_rule_test": [
            _alerts(slow, "15m", []),
            _alerts(slow, "16m", [_burn(slow, "0.5%", "day or three")]),
            _alerts(fast, "16m", []), _alerts(fast, "400m", [])],
    }])


def test_within_budget_nothing_burns(promtool: str, tmp_path: Path) -> None:
    """0.05% lost (half the budget): no SLO alert; each loss still pages on its own."""
    _run(promtool, tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": f'{LOST}{{{SEL}, agent_name="support", cause="no_capacity"}}',
             "values": "0+1x600"},
            {"series": f'{ALL}{{{SEL}, agent_name="support"}}', "values": "0+2000x600"}],
        "alert_rule_test": [
            _alerts("LiveKitAgentsDispatchSloFastBurn", at, []) for at in ("10m", "300m", "600m")
        ] + [_alerts("LiveKitAgentsDispatchSloSlowBurn", at, []) for at in ("100m", "600m")],
    }])


def test_stalled_log_pipeline_tickets(promtool: str, tmp_path: Path) -> None:
    """Heartbeats stop at 10m: no increase over 2m from 12m, firing 5m later; an mtail that
    cannot be scraped fires the same alert."""
    name = "LiveKitAgentsServerLogStalled"
    description = ("No heartbeat from the server-log filter reached Prometheus through mtail "
                   "{instance} in 2m (or mtail cannot be scraped): lost dispatches are not being "
                   "counted, so the server-log alerts cannot fire.")

    def found(instance: str) -> dict[str, Any]:
        return {"exp_labels": {"severity": "warning", "concern": "monitoring",
                               "job": "livekit-server-log",
                               "instance": instance},
                "exp_annotations": {
                    "summary": "livekit-server's log is not being read into metrics.",
                    "description": description.format(instance=instance),
                    "runbook_url": RUNBOOK + name.lower()}}

    _run(promtool, tmp_path, [{
        "interval": "1m",
        "input_series": [
            {"series": 'livekit_agents_server_log_heartbeats_total{job="livekit-server-log", '
                       'instance="a:3903"}', "values": "0+6x10 60x20"},
            {"series": 'up{job="livekit-server-log", instance="a:3903"}', "values": "1x30"},
            {"series": 'up{job="livekit-server-log", instance="b:3903"}', "values": "1x10 0x20"}],
        "alert_rule_test": [
            _alerts(name, "14m", []),
            _alerts(name, "16m", [found("b:3903")]),
            _alerts(name, "17m", [found("a:3903"), found("b:3903")])],
    }])


def test_objective_sets_every_burn_threshold() -> None:
    config = load_config(overrides={"server_log": {"slo_objective": 0.99}})
    alerts = {r["alert"]: r for g in rule_groups(config) for r in g["rules"] if "alert" in r}
    fast = alerts["LiveKitAgentsDispatchSloFastBurn"]["expr"]
    slow = alerts["LiveKitAgentsDispatchSloSlowBurn"]["expr"]
    assert fast.count("> 0.144") == 2 and fast.count("> 0.06") == 2, fast
    assert slow.count("> 0.03") == 2 and slow.count("> 0.01") == 2, slow
    assert "objective 99%, error budget 1%" in alerts["LiveKitAgentsDispatchSloFastBurn"][
        "annotations"]["description"]


def test_disabled_server_log_renders_no_server_log_group() -> None:
    groups = render_rules(load_config(overrides={"server_log": {"enabled": False}}))["groups"]
    names = [g["name"] for g in groups]
    assert RECORDING_GROUP not in names and ALERT_GROUP not in names, names
    assert names, "the worker-side groups remain"


def test_selector_reaches_every_server_log_series() -> None:
    config = load_config(overrides={"server_log": {"selector": 'job="lk", env="prod"'}})
    for group in rule_groups(config):
        for rule in group["rules"]:
            for name in ("livekit_agents_server_dispatches_lost_total",
                         "livekit_agents_server_dispatches_total",
                         "livekit_agents_server_log_heartbeats_total"):
                assert rule["expr"].count(name) == rule["expr"].count(
                    name + '{job="lk", env="prod"}'), rule["expr"]


@pytest.mark.parametrize("overrides, message", [
    ({"server_log": {"slo_objective": 1}}, "server_log.slo_objective: must be in [0.5, 1)"),
    ({"server_log": {"alerts": {"dispatches_lost": {"window": "soon"}}}},
     "server_log.alerts.dispatches_lost.window: must be a duration"),
    ({"server_log": {"objective": 0.99}}, "server_log.objective"),
])
def test_bad_server_log_config_is_one_clear_line(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=overrides)
    text = str(info.value)
    assert message in text and "\n" not in text, text
