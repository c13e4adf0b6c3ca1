"""The rendered rules under the real promtool: syntax, and behaviour of every alert.

Test files are generated into a temporary directory from the configuration, so the
``for:`` boundaries probed follow the configured values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import yaml
from alert_files import ALERTS_DIR, run_promtool, write_yaml
from alert_scenarios import (
    TEST_CONFIGS,
    Scenario,
    alert_test,
    bursty_fleet,
    effective_load_unreadable,
    failures_below_either_threshold,
    recording_test,
    refused_then_placed_elsewhere,
    rolling_restart,
    routing_refusals,
    scale_to_zero,
    scenarios,
    scrape_gap,
    silent_test,
    step_then_flat,
    tiny_traffic,
)

from livekit_agents_exporter.rules import RulesConfig, load_config, render_rules
from livekit_agents_exporter.rules.alerting import DEFINITIONS
from livekit_agents_exporter.rules.config import alert_name
from livekit_agents_exporter.rules.dispatch_slo_config import SERVER_LOG_ALERTS
from livekit_agents_exporter.rules.render import OPERATOR_FILE, RULES_FILE, render_prometheus_rule

RULE_FILE = "rules.yaml"

VARIANTS: dict[str, dict[str, Any]] = {
    **TEST_CONFIGS,
    "no aggregation labels": {"aggregation_labels": []},
    "empty selector": {"selector": "", "alerts": {"target_down": {"enabled": False}}},
    "every alert disabled": {"alerts": {key: {"enabled": False} for key in DEFINITIONS}},
}


def _config(name: str) -> RulesConfig:
    return load_config(overrides=VARIANTS[name])


def _promtool_test(promtool: str, tmp_path: Path, config: RulesConfig,
                   tests: list[dict[str, Any]]) -> None:
    write_yaml(tmp_path / RULE_FILE, render_rules(config))
    # promtool evaluates groups in random order unless told: recording rules first, as the
    # alerts read them at the same evaluation
    order = [group["name"] for group in render_rules(config)["groups"]]
    write_yaml(tmp_path / "test.yaml", {"rule_files": [RULE_FILE], "evaluation_interval": "1m",
                                        "group_eval_order": order, "tests": tests})
    result = run_promtool(promtool, "test", "rules", "test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _annotations(config: RulesConfig):
    def annotations(key: str, labels: dict[str, str], description: str) -> dict[str, str]:
        alert = config.alerts[key]
        out = {"summary": DEFINITIONS[key].summary, "description": description,
               "runbook_url": f"{config.runbook_base_url}#{alert.name.lower()}"}
        scope = DEFINITIONS[key].scope
        if config.grafana_url and scope not in ("target", "pack"):
            names = ["agent_name", *config.aggregation_labels] + \
                (["instance"] if scope == "worker" else [])
            query = "&".join(f"var-{n}={quote_plus(labels.get(n, ''))}" for n in names)
            out["dashboard_url"] = f"{config.grafana_url}/d/{config.dashboard_uid}?{query}"
        return out

    return annotations


def alert_fires_at(config: RulesConfig, workers: list[Any], key: str, minute: int
                   ) -> dict[str, Any]:
    """A promtool test that only checks ``key`` fires (any labels) at ``minute``."""
    from alert_scenarios import STEP
    return {"name": f"{key} fires", "interval": f"{STEP}s",
            "input_series": [s for w in workers for s in w.series(minute + 2)],
            "promql_expr_test": [{
                "expr": f'count(ALERTS{{alertname="{alert_name(key)}", alertstate="firing"}})',
                "eval_time": f"{minute}m", "exp_samples": [{"labels": "{}", "value": 1}]}]}


# --- promtool check rules -------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("fmt", ["prometheus", "operator"])
def test_every_rendered_variant_passes_promtool_check(promtool: str, tmp_path: Path,
                                                      variant: str, fmt: str) -> None:
    config = _config(variant)
    # the operator object carries the same groups under spec:, which is what promtool reads
    document = render_prometheus_rule(config)["spec"] if fmt == "operator" \
        else render_rules(config)
    write_yaml(tmp_path / RULE_FILE, document)
    result = run_promtool(promtool, "check", "rules", RULE_FILE, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_scaled_for_durations_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    write_yaml(tmp_path / RULE_FILE, render_rules(load_config().scaled(0.01)))
    result = run_promtool(promtool, "check", "rules", RULE_FILE, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_files_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    result = run_promtool(promtool, "check", "rules", str(ALERTS_DIR / RULES_FILE), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    spec = yaml.safe_load((ALERTS_DIR / OPERATOR_FILE).read_text())["spec"]
    write_yaml(tmp_path / RULE_FILE, spec)
    result = run_promtool(promtool, "check", "rules", RULE_FILE, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# --- promtool test rules --------------------------------------------------------------------


def _scenario_params() -> list[Any]:
    params = []
    for name in TEST_CONFIGS:
        for scenario in scenarios(_config(name)):
            params.append(pytest.param(name, scenario.name,
                                       id=f"{name}-{scenario.alert}-{scenario.name}"))
    return params


def test_every_enabled_alert_has_a_scenario() -> None:
    for name in TEST_CONFIGS:
        config = _config(name)
        covered = {s.alert for s in scenarios(config)}
        # the server-log alerts are probed in test_dispatch_slo.py
        assert covered == {k for k, a in config.alerts.items()
                           if a.enabled and k not in SERVER_LOG_ALERTS}, name


@pytest.mark.parametrize(("config_name", "scenario_name"), _scenario_params())
def test_alert_fires_at_its_for_boundary_and_resolves(promtool: str, tmp_path: Path,
                                                      config_name: str,
                                                      scenario_name: str) -> None:
    config = _config(config_name)
    scenario: Scenario = next(s for s in scenarios(config) if s.name == scenario_name)
    _promtool_test(promtool, tmp_path, config,
                   [alert_test(config, scenario, _annotations(config))])


@pytest.mark.parametrize("config_name", list(TEST_CONFIGS))
def test_healthy_bursty_fleet_stays_silent(promtool: str, tmp_path: Path,
                                           config_name: str) -> None:
    config = _config(config_name)
    _promtool_test(promtool, tmp_path, config, [
        silent_test(config, "busy workers dip in and out of full, others have room",
                    bursty_fleet(config), length=200),
        silent_test(config, "one refused offer every ten minutes is too few to alert on",
                    tiny_traffic(config), length=60),
        silent_test(config, "job failures below the ratio or below the count",
                    failures_below_either_threshold(config), length=90),
        silent_test(config, "a request handler routes 75% of offers away on purpose",
                    routing_refusals(config), length=60),
        silent_test(config, "every scrape fails for three minutes", scrape_gap(config),
                    length=40, allowed={"target_down"}),
        silent_test(config, "headroom steps down once and stays flat", step_then_flat(config),
                    length=200),
        silent_test(config, "a worker is replaced by a new pod", rolling_restart(config),
                    length=40),
        silent_test(config, "the effective load reads NaN everywhere: monitoring only",
                    effective_load_unreadable(config), length=40,
                    allowed={"effective_load_unknown"}),
    ])


@pytest.mark.parametrize("config_name", list(TEST_CONFIGS))
def test_refusals_placed_elsewhere_do_not_page(promtool: str, tmp_path: Path,
                                               config_name: str) -> None:
    """Every worker refuses as full within every window, but one is free at each
    evaluation and the full seconds never overlap: no call was lost, NoCapacity is silent
    (the rejection warning may fire: it is about the refusals, not about lost calls)."""
    config = _config(config_name)
    others = {key for key in config.alerts if key != "no_capacity"}
    _promtool_test(promtool, tmp_path, config, [
        silent_test(config, "each worker refuses at its own time, the others absorb it",
                    refused_then_placed_elsewhere(config), length=40, allowed=others)])


@pytest.mark.parametrize("config_name", list(TEST_CONFIGS))
def test_planned_scale_to_zero_does_not_page(promtool: str, tmp_path: Path,
                                             config_name: str) -> None:
    overrides = {**VARIANTS[config_name], "scale_to_zero_agents": ["batch"]}
    config = load_config(overrides=overrides)
    _promtool_test(promtool, tmp_path, config, [
        silent_test(config, "agent batch scales to zero", scale_to_zero(config), length=60)])
    # and without the setting, it is a page
    plain = _config(config_name)
    gone = plain.alerts["workers_gone"]
    fire = 10 + (gone.for_.seconds // 60)
    write = alert_fires_at(plain, scale_to_zero(plain), "workers_gone", int(fire) + 1)
    _promtool_test(promtool, tmp_path, plain, [write])


@pytest.mark.parametrize("config_name", [*TEST_CONFIGS, "no aggregation labels"])
def test_recording_rules_per_agent_and_cluster(promtool: str, tmp_path: Path,
                                               config_name: str) -> None:
    config = _config(config_name)
    _promtool_test(promtool, tmp_path, config, [recording_test(config)])
