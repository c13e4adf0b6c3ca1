"""The dashboard counts workers the way the alert pack's recording rules do.

Both read the same raw gauges; ``promtool test rules`` evaluates the dashboard's fleet
stats and the pack's ``agent_name:*`` rules on the same series (workers available, full,
draining, disconnected, above the server's target load, in dev mode) and expects equal
numbers. Needs ``livekit_agents_exporter.rules`` (the alert pack) and promtool. The
formula texts are compared too: worker counts, per-agent rates and dispatch percentiles
(deduplicated per worker before the sum in both). ``test_read_twice.py`` checks every
panel against a real fleet's samples read twice.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import dash_lint as L
import dash_live
import pytest
import yaml

from livekit_agents_exporter import metrics as m

# fleet stat title -> the pack's recording rule (fixed names), summed over agents
AGREEMENT = {
    "Workers registered": f"agent_name:{m.PREFIX}workers_registered:sum",
    "Workers able to take a job": f"agent_name:{m.PREFIX}workers_available:sum",
    "Workers full": f"agent_name:{m.PREFIX}workers_full:sum",
}
# (agent, registered, full, draining, load, effective load, threshold): registered 5,
# able 2 (w1, w6), full 2 (w2, w3; w5's status is stale once it is disconnected)
WORKERS = [
    ("sales", 1, 0, 0, 0.30, 0.30, "0.7"),
    ("sales", 1, 1, 0, 0.80, 0.80, "0.7"),
    ("sales", 1, 1, 1, 0.00, 0.00, "0.7"),
    ("survey", 1, 0, 0, 0.72, 0.72, "0.75"),
    ("survey", 0, 1, 0, 0.90, 0.90, "0.75"),
    ("auto", 1, 0, 0, 0.20, 0.20, "+Inf"),
]


# w0 and w1 are also read through a second Prometheus replica (series that differ only in
# a label that is not a worker label): each still counts once, in the rules and the stats
READ_TWICE = {0, 1}


def _input_series() -> list[dict[str, str]]:
    out = []
    copies = [(i, w, "") for i, w in enumerate(WORKERS)]
    copies += [(i, WORKERS[i], ', prometheus_replica="b"') for i in sorted(READ_TWICE)]
    for i, (agent, reg, full, drain, load, eff, thr), replica in copies:
        labels = (f'job="livekit-agents", instance="w{i}:9464", agent_name="{agent}", '
                  f'cluster="eu", namespace="voice"{replica}')
        for short, value in (("worker_registered", reg), ("worker_full", full),
                             ("worker_draining", drain), ("worker_load_ratio", load),
                             ("worker_effective_load_ratio", eff),
                             ("worker_load_threshold_ratio", thr)):
            out.append({"series": f"{m.series(short)}{{{labels}}}",
                        "values": " ".join([str(value)] * 11)})
    return out


def test_fleet_stats_agree_with_the_recording_rules(committed: dict[str, Any],
                                                     tmp_path: Path) -> None:
    try:
        from livekit_agents_exporter.rules import load_config, render_rules
    except ImportError:
        pytest.skip("the alert pack (livekit_agents_exporter.rules) is not in this tree")
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("LKX_REQUIRE_BINARIES"):
            pytest.fail("promtool not found (Debian package 'prometheus')")
        pytest.skip("promtool not found (Debian package 'prometheus')")

    config = load_config()  # both at their defaults: the server's target_load is 0.7
    values = dash_live.all_values(committed)
    stats = {p["title"]: p["targets"][0]["expr"] for p in L.data_panels(committed)
             if p["title"] in AGREEMENT}
    assert set(stats) == set(AGREEMENT)
    groups = render_rules(config)["groups"]
    recording = [{"name": g["name"], "rules": [r for r in g["rules"] if "record" in r]}
                 for g in groups]
    dashboard_rules = [{"record": f"dashboard:stat_{i}",
                        "expr": dash_live.interpolate(stats[title], values)}
                       for i, title in enumerate(AGREEMENT)]
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(yaml.safe_dump(
        {"groups": [*recording, {"name": "dashboard", "rules": dashboard_rules}]},
        sort_keys=False))
    tests = [{"expr": f"sum({rule}) - on() dashboard:stat_{i}",
              "eval_time": "2m", "exp_samples": [{"labels": "{}", "value": 0}]}
             for i, rule in enumerate(AGREEMENT.values())]
    tests.append({"expr": "dashboard:stat_1", "eval_time": "2m",
                  "exp_samples": [{"labels": "dashboard:stat_1", "value": 2}]})
    test_path = tmp_path / "test.yml"
    test_path.write_text(yaml.safe_dump({
        "rule_files": [rules_path.name], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": _input_series(),
                   "promql_expr_test": tests}]}, sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", test_path.name], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


# --- the same formula text, not just the same numbers ----------------------------------

_MATCHERS = re.compile(r"\{[^{}]*\}")


def _formula(expr: str, target_load: str) -> str:
    """An expression with its selectors' matchers and the target load taken out: what
    is left is the formula."""
    return _MATCHERS.sub("{}", expr).replace(target_load, "TARGET_LOAD")


@pytest.mark.parametrize("overrides", [
    {},
    {"selector": 'job="voice", env=~"prod|staging"', "aggregation_labels": ["region"],
     "worker_labels": ["pod"], "server_target_load": 0.6},
], ids=["defaults", "custom"])
def test_dashboard_and_rules_write_the_same_worker_formulas(overrides: dict[str, Any]) -> None:
    """The availability and full-worker formulas of the dashboard's stats are, matchers
    aside, the recording rules' (both come from ``promql.Worker`` and ``promql.dedup``,
    one series per worker process), and the dashboard groups per agent by the rules'
    aggregation labels."""
    from livekit_agents_exporter.dashboard import DashboardOptions, to_dict
    from livekit_agents_exporter.dashboard.build import build_dashboard
    from livekit_agents_exporter.rules import load_config, render_rules
    from livekit_agents_exporter.rules import recording as r

    config = load_config(overrides=overrides)
    rules = {rule["record"]: rule["expr"] for g in render_rules(config)["groups"]
             for rule in g["rules"] if "record" in rule}
    d = to_dict(build_dashboard(DashboardOptions(mixin=config)))
    exprs = {p["title"]: [t["expr"] for t in p["targets"]] for p in L.data_panels(d)}
    rule_target = repr(config.server_target_load)

    able = _formula(exprs["Workers able to take a job"][0], "$target_load")
    available = _formula(rules[r.WORKER_AVAILABLE], rule_target)
    # the rule is one worker's availability, deduplicated; the stat sums exactly that
    assert able == f"sum(\n{available}\n)", (able, available)

    full = _formula(exprs["Workers full"][0], "$target_load")
    assert full.startswith("sum(") and full.endswith(")"), full
    assert f"({full[4:-1]})" in _formula(rules[r.WORKERS_FULL], rule_target), \
        (full, rules[r.WORKERS_FULL])

    fleet = ", ".join((*config.aggregation_labels, "agent_name"))
    assert f"sum by ({fleet}) (" in rules[r.WORKERS_AVAILABLE]
    by_state = exprs["Workers by state"]
    assert all(e.startswith(f"sum by ({fleet}) (") for e in by_state), by_state


# dashboard panel [query] -> the recording rule it draws over Grafana's rate interval
RATE_AGREEMENT = {
    ("Job offers", 0): "JOB_REQUESTS_RATE",
    ("Refused offers by reason", 0): "JOB_REQUESTS_REJECTED_RATE",
    ("Assignment timeouts and late assignments", 0): "ASSIGNMENT_TIMEOUTS_RATE",
    ("Jobs launched and finished", 0): "JOBS_LAUNCHED_RATE",
    ("Jobs launched and finished", 1): "JOBS_FINISHED_RATE",
    ("Job failures by reason", 0): "JOBS_FAILED_RATE",
}


@pytest.mark.parametrize("overrides", [
    {},
    {"selector": 'job="voice"', "aggregation_labels": ["region"], "worker_labels": ["pod"]},
], ids=["defaults", "custom"])
def test_dashboard_rates_and_percentiles_are_the_rules_formulas(
        overrides: dict[str, Any]) -> None:
    """The dashboard's per-agent rates and dispatch percentiles are, matchers and rate
    window aside, the recording rules' expressions (``promql.fleet_sum``): one series per
    worker process (and ``reason``, ``le``) first, then the sum per agent."""
    from livekit_agents_exporter.dashboard import DashboardOptions, to_dict
    from livekit_agents_exporter.dashboard.build import build_dashboard
    from livekit_agents_exporter.promql import RATE_WINDOW
    from livekit_agents_exporter.rules import load_config, render_rules
    from livekit_agents_exporter.rules import recording as r

    config = load_config(overrides=overrides)
    rules = {rule["record"]: rule["expr"] for g in render_rules(config)["groups"]
             for rule in g["rules"] if "record" in rule}
    d = to_dict(build_dashboard(DashboardOptions(mixin=config)))
    exprs = {p["title"]: [t["expr"] for t in p["targets"]] for p in L.data_panels(d)}

    def formula(expr: str, window: str) -> str:
        return _MATCHERS.sub("{}", expr).replace(f"[{window}]", "[WINDOW]")

    for (title, ref), rule in RATE_AGREEMENT.items():
        dashboard = formula(exprs[title][ref], "$__rate_interval")
        recorded = formula(rules[getattr(r, rule)], RATE_WINDOW)
        assert dashboard == recorded, (title, dashboard, recorded)
    buckets = formula(rules[r.DISPATCH_LATENCY_BUCKETS_RATE], RATE_WINDOW)
    for q, expr in zip(r.DISPATCH_QUANTILES, exprs["Dispatch latency (offer to launch)"],
                       strict=True):
        assert formula(expr, "$__rate_interval") == f"histogram_quantile({q}, {buckets})", expr
