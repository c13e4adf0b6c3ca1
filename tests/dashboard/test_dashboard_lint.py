"""The dashboard-linter rule list (and the project's own rules) enforced on the JSON.

Each rule is one test on the committed JSON and on a customised rendering, and one test
that breaks the dashboard on purpose and expects that rule to complain, so a rule that
silently checks nothing is caught too.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dash_lint as L
import pytest

from livekit_agents_exporter import metrics as m
from livekit_agents_exporter.dashboard import (
    DashboardOptions,
    build_dashboard,
    parse_matchers,
    to_dict,
)

CUSTOM = DashboardOptions(title="Voice agents (prod)", uid="lk-voice-prod", datasource="Prom prod",
                          selector=parse_matchers('env="prod", team=~"voice|video"'),
                          target_load=0.6)


@pytest.fixture(scope="module")
def custom() -> dict[str, Any]:
    return to_dict(build_dashboard(CUSTOM))


@pytest.mark.parametrize("rule", list(L.ALL_RULES))
def test_committed_dashboard_passes(rule: str, committed: dict[str, Any],
                                    exclusions: list[L.Exclusion]) -> None:
    findings = L.lint(committed, rule, exclusions)
    assert not findings, "\n".join(map(str, findings))


@pytest.mark.parametrize("rule", list(L.ALL_RULES))
def test_customised_dashboard_passes(rule: str, custom: dict[str, Any],
                                     exclusions: list[L.Exclusion]) -> None:
    findings = L.lint(custom, rule, exclusions)
    assert not findings, "\n".join(map(str, findings))


def test_every_exclusion_is_needed_and_explained(committed: dict[str, Any],
                                                 exclusions: list[L.Exclusion]) -> None:
    for exclusion in exclusions:
        assert exclusion.rule in L.ALL_RULES, f"unknown rule {exclusion.rule}"
        assert exclusion.reason.strip(), f"exclusion of {exclusion.rule} without a reason"
        raw = L.ALL_RULES[exclusion.rule](committed)
        assert any(exclusion.matches(f) for f in raw), f"stale exclusion: {exclusion}"


def test_only_alert_panels_are_excluded(exclusions: list[L.Exclusion],
                                        committed: dict[str, Any]) -> None:
    """Exclusions are for the panels reading ALERTS*, nothing else."""
    by_title = {p["title"]: p for p in L.data_panels(committed)}
    for exclusion in exclusions:
        panel = by_title[exclusion.panel]
        assert all("ALERTS" in t["expr"] for t in panel["targets"]), exclusion


# --- each rule catches what it is for ------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _template(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in d["templating"]["list"] if t["name"] == name)


def _panel(d: dict[str, Any], kind: str = "timeseries") -> dict[str, Any]:
    return next(p for p in L.data_panels(d) if p["type"] == kind)


def _first_target(d: dict[str, Any], contains: str) -> dict[str, Any]:
    return next(t for _, _, t in L.targets(d) if contains in t["expr"])


def _edit_expr(old: str, new: str, contains: str | None = None) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        t = _first_target(d, contains or old)
        t["expr"] = t["expr"].replace(old, new)
    return mutate


def _set(getter: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: Any) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        getter(d)[key] = value
    return mutate


def _loki_target(d: dict[str, Any]) -> None:
    _panel(d)["targets"][0]["datasource"] = {"type": "loki", "uid": "${datasource}"}


def _no_unit(d: dict[str, Any]) -> None:
    del _panel(d)["fieldConfig"]["defaults"]["unit"]


def _duplicate_id(d: dict[str, Any]) -> None:
    ps = L.data_panels(d)
    ps[1]["id"] = ps[0]["id"]


def _raw_counter(d: dict[str, Any]) -> None:
    t = _first_target(d, "rate(")
    t["expr"] = f'sum({m.series("job_requests")}{{job=~"$job", instance=~"$instance"}})'


MUTATIONS: dict[str, Mutation] = {
    "template-datasource-rule": _set(lambda d: _template(d, "datasource"), "name", "ds"),
    "template-job-rule": _set(lambda d: _template(d, "job"), "allValue", ".*"),
    "template-instance-rule": _set(lambda d: _template(d, "instance"), "multi", False),
    "template-label-promql-rule": _set(lambda d: _template(d, "cluster"), "query",
                                       "label_values(up{, cluster)"),
    "template-on-time-change-reload-rule": _set(lambda d: _template(d, "job"), "refresh", 1),
    "panel-datasource-rule": _set(lambda d: _panel(d), "datasource",
                                  {"type": "prometheus", "uid": "prom-prod"}),
    "panel-title-description-rule": _set(lambda d: _panel(d, "stat"), "description", ""),
    "panel-units-rule": _no_unit,
    "panel-no-targets-rule": _set(lambda d: _panel(d, "heatmap"), "targets", []),
    "target-logql-rule": _loki_target,
    "target-logql-auto-rule": _loki_target,
    "target-promql-rule": _edit_expr("[$__rate_interval])", "[$__rate_interval]"),
    "target-rate-interval-rule": _edit_expr("[$__rate_interval]", "[5m]"),
    "target-job-rule": _edit_expr('job=~"$job", ', ""),
    "target-instance-rule": _edit_expr(', instance=~"$instance"', ""),
    "target-counter-agg-rule": _raw_counter,
    "uneditable-dashboard": lambda d: d.__setitem__("editable", True),
    "catalogue-metrics-rule": _edit_expr(m.series("worker_full") + "{",
                                         m.series("worker_full") + "_typo{"),
    "filter-variables-rule": _edit_expr('agent_name=~"$agent_name", ', ""),
    "variables-rule": _set(lambda d: _template(d, "agent_name"), "allValue", ".+"),
    "layout-rule": _duplicate_id,
}


def test_every_rule_has_a_mutation() -> None:
    assert set(MUTATIONS) == set(L.ALL_RULES)


@pytest.mark.parametrize("rule", list(L.ALL_RULES))
def test_rule_catches_its_violation(rule: str, committed: dict[str, Any]) -> None:
    broken = copy.deepcopy(committed)
    MUTATIONS[rule](broken)
    assert broken != committed, "the mutation changed nothing"
    assert L.ALL_RULES[rule](broken), f"{rule} did not notice the violation"


# --- the generator takes names from the catalogue --------------------------------------

GENERATOR_FILES = [
    *sorted((Path(__file__).parents[2] / "exporter/livekit_agents_exporter/dashboard")
            .glob("*.py")),
    Path(__file__).parents[2] / "exporter/livekit_agents_exporter/commands/dashboard.py",
]


@pytest.mark.parametrize("path", GENERATOR_FILES, ids=lambda p: p.name)
def test_generator_hard_codes_no_metric_name(path: Path) -> None:
    package = "livekit_agents_exporter"  # the package's own name is not a metric
    hard_coded = [w for w in re.findall(rf"\b{m.PREFIX}\w+", path.read_text()) if w != package]
    assert not hard_coded, f"{path.name} hard-codes {hard_coded}: take names from metrics.py"


def test_every_metric_name_in_the_json_is_in_the_catalogue(committed: dict[str, Any]) -> None:
    text = json.dumps(committed)
    used = set(re.findall(rf"{m.PREFIX}\w+", text))
    known = L.catalogue_series() | {spec.name for spec in m.CATALOGUE}  # families in descriptions
    assert used <= known, used - known
