"""Conventions every rendered rule keeps (monitoring-mixin style), for each test config."""

from __future__ import annotations

import re
from typing import Any

import pytest
from alert_files import ALERTS_DIR, ROOT
from alert_scenarios import TEST_CONFIGS

from livekit_agents_exporter import metrics as m
from livekit_agents_exporter.rules import load_config, render_rules
from livekit_agents_exporter.rules.alerting import CONCERNS, DEFINITIONS
from livekit_agents_exporter.rules.config import ALERT_PREFIX, SEVERITIES, Duration, alert_name
from livekit_agents_exporter.rules.dispatch_slo import SCOPES as SERVER_LOG_SCOPES

RULES_SOURCE = ROOT / "exporter" / "livekit_agents_exporter" / "rules"
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
BUILTIN_SERIES = {"up"}
FUNCTIONS_OVER_COUNTERS = ("rate", "irate", "increase")
# a raw metric name: the prefix, not inside a recorded name, not the package's own name
RAW_NAME = re.compile(rf"(?<![:\w])({re.escape(m.PREFIX)}(?!exporter\b)[a-z0-9_]+)")


def _rules(config_name: str) -> list[dict[str, Any]]:
    config = load_config(overrides=TEST_CONFIGS[config_name])
    return [rule for group in render_rules(config)["groups"] for rule in group["rules"]]


def _alerts(config_name: str) -> list[dict[str, Any]]:
    return [r for r in _rules(config_name) if "alert" in r]


def _records(config_name: str) -> list[dict[str, Any]]:
    return [r for r in _rules(config_name) if "record" in r]


def _without_strings(expr: str) -> str:
    """Label values may hold anything ('/', ':', names): blank them before parsing."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def _github_anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def _runbook_anchors() -> set[str]:
    text = (ALERTS_DIR / "runbooks.md").read_text()
    return {_github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def _catalogue_series() -> set[str]:
    names = set()
    for spec in ALL_SPECS:
        names.add(spec.series_name)
        if spec.kind == "histogram":
            names.update(spec.name + suffix for suffix in HISTOGRAM_SUFFIXES)
    return names


CONFIGS = list(TEST_CONFIGS)
SCOPES = {alert_name(key): definition.scope for key, definition in DEFINITIONS.items()}
SCOPES.update({alert_name(key): scope for key, scope in SERVER_LOG_SCOPES.items()})
# the worker's metrics and those the mtail program counts from livekit-server's log
ALL_SPECS = (*m.CATALOGUE, *m.SERVER_LOG_CATALOGUE)


@pytest.mark.parametrize("config_name", CONFIGS)
def test_alert_names_are_prefixed_camel_case(config_name: str) -> None:
    names = [a["alert"] for a in _alerts(config_name)]
    for name in names:
        assert re.fullmatch(rf"{ALERT_PREFIX}(?:[A-Z][a-z0-9]+)+", name), name
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("config_name", CONFIGS)
def test_alerts_carry_severity_for_and_only_known_labels(config_name: str) -> None:
    for alert in _alerts(config_name):
        assert alert["labels"].keys() == {"severity", "concern"}, alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, alert["alert"]
        assert alert["labels"]["concern"] in CONCERNS, alert["alert"]
        Duration.parse(alert["for"])


@pytest.mark.parametrize("config_name", CONFIGS)
def test_summary_static_description_templated(config_name: str) -> None:
    for alert in _alerts(config_name):
        summary, description = alert["annotations"]["summary"], alert["annotations"]["description"]
        assert "{{" not in summary and "$" not in summary, alert["alert"]
        assert summary.endswith(".") and ". " not in summary, f"one sentence: {summary!r}"
        assert "{{" in description, alert["alert"]
        # names the subject: the agent (worker alerts: and the instance)
        scope = SCOPES[alert["alert"]]
        if scope not in ("target", "pack"):
            assert "$labels.agent_name" in description, alert["alert"]
        if scope in ("worker", "target"):
            assert "$labels.instance" in description, alert["alert"]


@pytest.mark.parametrize("config_name", CONFIGS)
def test_runbook_url_points_at_an_existing_heading(config_name: str) -> None:
    config = load_config(overrides=TEST_CONFIGS[config_name])
    anchors = _runbook_anchors()
    for alert in _alerts(config_name):
        base, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert base == config.runbook_base_url
        assert anchor == alert["alert"].lower()
        assert anchor in anchors, f"alerts/runbooks.md has no section for {alert['alert']}"


def test_runbooks_have_one_section_per_alert_and_no_other() -> None:
    text = (ALERTS_DIR / "runbooks.md").read_text()
    sections = re.findall(r"^## (\S+)$", text, re.M)
    assert sorted(sections) == sorted(a["alert"] for a in _alerts("defaults"))


def test_dashboard_url_when_grafana_is_configured() -> None:
    config = load_config(overrides=TEST_CONFIGS["custom"])
    for alert in _alerts("custom"):
        url = alert["annotations"].get("dashboard_url")
        if SCOPES[alert["alert"]] in ("target", "pack"):
            assert url is None, alert["alert"]
            continue
        assert url and url.startswith(f"{config.grafana_url}/d/{config.dashboard_uid}?"), url
        assert "var-agent_name={{ $labels.agent_name | urlquery }}" in url
    assert all("dashboard_url" not in a["annotations"] for a in _alerts("defaults"))


@pytest.mark.parametrize("config_name", CONFIGS)
def test_recording_rule_names_are_level_metric_operations(config_name: str) -> None:
    for rule in _records(config_name):
        level, metric, operations = rule["record"].split(":")
        assert re.fullmatch(r"[a-z_]+", level) and set(level.split("_")) <= {
            "agent", "name", "reason", "instance"}, rule["record"]
        assert metric.startswith(m.PREFIX), rule["record"]
        assert re.fullmatch(r"[a-z0-9_]+", operations), rule["record"]


@pytest.mark.parametrize("config_name", CONFIGS)
def test_every_series_used_exists(config_name: str) -> None:
    """Raw names come from metrics.py, recorded names from a recording rule of the pack."""
    known = _catalogue_series() | BUILTIN_SERIES
    recorded = {r["record"] for r in _records(config_name)}
    for rule in _rules(config_name):
        expr = _without_strings(rule["expr"])
        for name in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{|\[)", expr):
            assert name in known | recorded, f"{name} in {rule.get('record') or rule['alert']}"
        for name in RAW_NAME.findall(expr):
            assert name in known, f"{name} is not in metrics.py"
        for name in re.findall(r"\b([a-z_]+:[a-z0-9_]+:[a-z0-9_]+)\b", expr):
            assert name in recorded, f"{name} is not recorded by the pack"


def _operand_after(expr: str, index: int) -> str:
    """The operand right of the operator at ``index``: a parenthesised group or a token."""
    rest = expr[index + 1:].lstrip()
    if rest.startswith("("):
        depth = 0
        for i, char in enumerate(rest):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                return rest[:i + 1]
    return re.match(r"[\w:.{}\"=,\s]*?(?=\s|$)", rest).group(0)


@pytest.mark.parametrize("config_name", CONFIGS)
def test_every_rate_is_guarded(config_name: str) -> None:
    """rate()/increase() only over counters; every division guards its denominator
    against zero; quantiles only where something was observed."""
    counters = {s.series_name for s in ALL_SPECS if s.kind == "counter"} | {
        s.name + suffix for s in m.CATALOGUE if s.kind == "histogram"
        for suffix in HISTOGRAM_SUFFIXES}
    for rule in _rules(config_name):
        name = rule.get("record") or rule["alert"]
        expr = _without_strings(rule["expr"])
        for fn, series in re.findall(rf"\b({'|'.join(FUNCTIONS_OVER_COUNTERS)})\(\s*([\w:]+)",
                                     expr):
            assert series in counters, f"{fn}() over {series}, not a counter, in {name}"
        for match in re.finditer(r"/", expr):
            denominator = _operand_after(expr, match.start())
            guarded = re.fullmatch(r"\(.*>\s*0\)", denominator, re.S) or \
                denominator.startswith("clamp_min(") or re.fullmatch(r"[\d.]+", denominator)
            assert guarded, f"unguarded division by {denominator!r} in {name}"
        if "histogram_quantile(" in expr:
            assert re.search(r"\)\s+and\s+.*>\s*0\s*$", expr, re.S), name


def test_rates_guarded_against_tiny_traffic() -> None:
    alerts = {a["alert"]: a["expr"] for a in _alerts("defaults")}
    assert "job_requests:rate5m >= " in alerts["LiveKitAgentsJobRejectionsHigh"]
    assert ">= 3" in alerts["LiveKitAgentsJobsFailing"]


def test_generator_takes_metric_names_from_the_catalogue() -> None:
    for path in sorted(RULES_SOURCE.glob("*.py")):
        assert not RAW_NAME.findall(path.read_text()), \
            f"{path.name} spells a metric name: use metrics.series()/PREFIX"


def test_docs_mention_only_metrics_that_exist() -> None:
    known = _catalogue_series()
    recorded = {r["record"] for r in _records("defaults")}
    for doc in (ALERTS_DIR / "runbooks.md", ALERTS_DIR / "README.md"):
        text = doc.read_text()
        for name in RAW_NAME.findall(text):
            assert name in known, f"{doc.name} mentions {name}, not in metrics.py"
        for name in re.findall(r"\b([a-z_]+:[a-z0-9_.]+:[a-z0-9_]+)\b", text):
            if "..." not in name:
                assert name in recorded, f"{doc.name} mentions {name}, not recorded"


def test_readme_alert_table_matches_the_defaults() -> None:
    rows = re.findall(r"^\| `(LiveKitAgents\w+)` \| (\w+) \| (\w+) \|", (
        ALERTS_DIR / "README.md").read_text(), re.M)
    expected = [(a["alert"], a["labels"]["severity"], a["for"]) for a in _alerts("defaults")]
    assert rows == expected
