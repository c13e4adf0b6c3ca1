"""Configuration: defaults, files, overrides, and one clear line for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from alert_files import ALERTS_DIR
from hypothesis import given
from hypothesis import strategies as st

import livekit_agents_exporter
from livekit_agents_exporter.rules import ConfigError, Duration, load_config, render_rules
from livekit_agents_exporter.rules.config import ALERTS


def test_example_config_renders_exactly_the_defaults() -> None:
    assert load_config(ALERTS_DIR / "config.example.yaml") == load_config()


def test_example_config_documents_every_key() -> None:
    text = (ALERTS_DIR / "config.example.yaml").read_text()
    for key, section in ALERTS.items():
        assert f"\n  {key}:\n" in text
        for option in section.keys:
            assert f"\n    {option}: " in text, f"alerts.{key}.{option} missing"


def test_file_then_overrides_update_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("server_target_load: 0.8\nalerts:\n  capacity_low:\n    for: 30m\n")
    config = load_config(path, overrides={"alerts": {"capacity_low": {"headroom_below": 0.3}}})
    low = config.alert("capacity_low")
    assert (config.server_target_load, low.for_, low.params["headroom_below"]) == \
        (0.8, Duration(1800), 0.3)
    assert low.severity == "warning"  # untouched keys keep their defaults
    assert config.alert("no_capacity") == load_config().alert("no_capacity")


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert load_config(path) == load_config()


def test_scaled_shortens_every_for_and_keeps_windows() -> None:
    config = load_config().scaled(0.1)
    assert config.alert("no_capacity").for_ == Duration(6)
    assert config.alert("no_capacity").keep_firing_for == Duration(30)
    assert config.alert("capacity_low").for_ == Duration(90)
    assert config.alert("workers_gone").params["lookback"] == Duration(6 * 3600)
    rules = [r for g in render_rules(config)["groups"] for r in g["rules"]]
    assert "6s" in [r.get("for") for r in rules] and "1m30s" in [r.get("for") for r in rules]
    assert "30s" in [r.get("keep_firing_for") for r in rules]


def test_disabled_alerts_are_not_rendered() -> None:
    config = load_config(overrides={"alerts": {"worker_flapping": {"enabled": False}}})
    names = [r.get("alert") for g in render_rules(config)["groups"] for r in g["rules"]]
    assert "LiveKitAgentsWorkerFlapping" not in names and "LiveKitAgentsNoCapacity" in names


def test_selector_is_injected_into_every_raw_selector() -> None:
    config = load_config(overrides={"selector": 'job="a/b", namespace=~"voice-.*"'})
    rendered = str(render_rules(config))
    assert 'up{job="a/b", namespace=~"voice-.*"}' in rendered
    assert 'livekit_agents_worker_full{job="a/b", namespace=~"voice-.*"}' in rendered


@pytest.mark.parametrize(("text", "message"), [
    ("alerts: [\n  x", "c.yaml: invalid YAML at line 2, column 4"),
    ("- 1\n- 2\n", "c.yaml: (top level): must be a mapping, got a list"),
    ("selctor: x\n", "c.yaml: selctor: unknown key; did you mean 'selector'?"),
    ("alerts:\n  capacity_lo:\n    for: 5m\n",
     "c.yaml: alerts.capacity_lo: unknown key; did you mean 'capacity_low'?"),
    ("alerts:\n  no_capacity:\n    fro: 5m\n",
     "c.yaml: alerts.no_capacity.fro: unknown key; did you mean 'for'?"),
    ("server_target_load: high\n", "c.yaml: server_target_load: expected a number, got 'high'"),
    ("server_target_load: 1.5\n", "c.yaml: server_target_load: must be in (0, 1], got 1.5"),
    ("server_target_load: 0\n", "c.yaml: server_target_load: must be in (0, 1], got 0"),
    ("alerts:\n  no_capacity:\n    for: -5m\n",
     "c.yaml: alerts.no_capacity.for: must be a duration like 30s, 5m or 1h (no sign), "
     "got '-5m'"),
    ("alerts:\n  no_capacity:\n    for: 5\n",
     "c.yaml: alerts.no_capacity.for: expected a duration string like 30s, 5m or 1h, got 5"),
    ("alerts:\n  workers_gone:\n    lookback: 0s\n",
     "c.yaml: alerts.workers_gone.lookback: must be longer than 0s, got '0s'"),
    ("alerts:\n  no_capacity:\n    severity: page\n",
     "c.yaml: alerts.no_capacity.severity: must be one of critical, warning, info, got 'page'"),
    ("alerts:\n  no_capacity:\n    enabled: 'yes'\n",
     "c.yaml: alerts.no_capacity.enabled: expected true or false, got 'yes'"),
    ("alerts:\n  capacity_low:\n    headroom_below: 2\n",
     "c.yaml: alerts.capacity_low.headroom_below: must be in (0, 1], got 2"),
    ("alerts:\n  job_rejections_high:\n    min_requests_per_second: -1\n",
     "c.yaml: alerts.job_rejections_high.min_requests_per_second: must be a number >= 0, got -1"),
    ("aggregation_labels: cluster\n",
     "c.yaml: aggregation_labels: expected a list of label names, got 'cluster'"),
    ("aggregation_labels: [agent_name]\n",
     "c.yaml: aggregation_labels: 'agent_name' is used by the rules themselves"),
    ("selector: 'job=\"x\" env=\"y\"'\n", "c.yaml: selector: cannot parse label matchers at "),
    ("selector: '__name__=\"up\"'\n", "c.yaml: selector: a matcher on __name__ would change"),
    ("selector: ''\n", "c.yaml: selector: must not be empty while alerts.target_down is enabled"),
    ("grafana_url: grafana\n", "c.yaml: grafana_url: must be an http(s) URL, got 'grafana'"),
    ("prometheus_rule:\n  name: Livekit_Rules\n", "c.yaml: prometheus_rule.name: must be a "
     "Kubernetes object name"),
    ("prometheus_rule:\n  labels: {release: 1}\n",
     "c.yaml: prometheus_rule.labels: value of 'release' must be a string, got 1"),
    ("alerts:\n  workers_gone:\n    for: 7h\n",
     "c.yaml: alerts.workers_gone.for: must be shorter than alerts.workers_gone.lookback (6h)"),
])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path: Path, text: str,
                                                    message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    shown = str(caught.value)
    assert "\n" not in shown
    assert shown.startswith(str(tmp_path)) and message in shown, shown


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read the file: No such file"):
        load_config(tmp_path / "nope.yaml")


def test_bad_overrides_are_named_as_overrides() -> None:
    with pytest.raises(ConfigError, match=r"^overrides: alerts\.no_capacity\.for: must be"):
        load_config(overrides={"alerts": {"no_capacity": {"for": "soon"}}})


def test_duplicate_keys_are_refused_like_in_every_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("server_target_load: 0.8\nserver_target_load: 0.6\n")
    with pytest.raises(livekit_agents_exporter.ConfigError,
                       match=r"c\.yaml: invalid YAML at line 2, column 1: duplicate key "
                             r"'server_target_load' \(first on line 1\)"):
        load_config(path)


@pytest.mark.parametrize("written", [
    '{job="livekit-agents", env=~"prod|staging"}',
    "job='livekit-agents',env=~`prod|staging`,",
])
def test_selector_takes_the_dashboards_syntax(written: str) -> None:
    config = load_config(overrides={"selector": written})
    assert config.selector.replace("'", '"').replace("`", '"') == \
        'job="livekit-agents", env=~"prod|staging"', config.selector


@given(st.integers(min_value=0, max_value=10**9))
def test_duration_text_round_trips(millis: int) -> None:
    duration = Duration(millis / 1000)
    assert Duration.parse(str(duration)) == duration


def test_python_overrides_take_durations_and_tuples() -> None:
    config = load_config(overrides={"aggregation_labels": ("cluster", "namespace"),
                                    "alerts": {"no_capacity": {"for": Duration(10)}}})
    assert config.aggregation_labels == ("cluster", "namespace")
    assert config.alert("no_capacity").for_ == Duration(10)
