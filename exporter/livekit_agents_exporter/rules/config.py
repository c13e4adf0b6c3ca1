"""Configuration of the alert pack: schema, defaults, validation.

One nested schema describes every key, its default, its check and its documentation;
validation, defaults and the documented ``alerts/config.example.yaml`` all come from
it. Input is validated key by key, and a bad value raises ``ConfigError`` with one line
naming the source (file or ``overrides``), the dotted key and what is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ..config_file import ConfigError, ConfigMap, read_yaml
from ..prometheus_syntax import LABEL_NAME, Duration, SelectorError, parse_matchers

SEVERITIES = ("critical", "warning", "info")
ALERT_PREFIX = "LiveKitAgents"
# labels the rules themselves produce or group by: aggregating by them breaks the pack
RESERVED_LABELS = frozenset({"__name__", "agent_name", "le", "quantile", "reason", "error"})


# --- value checks: each returns the normalised value or raises ValueError(reason) ---

Check = Callable[[Any], Any]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def number_in(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Check:
    """A number within an interval; the message shows it in interval notation."""
    shown = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def check(value: Any) -> float:
        number = _number(value)
        if (number < low or number > high or (low_open and number == low)
                or (high_open and number == high)):
            raise ValueError(f"must be in {shown}, got {value!r}")
        return number

    return check


def non_negative(value: Any) -> float:
    number = _number(value)
    if number < 0 or math.isinf(number):
        raise ValueError(f"must be a number >= 0, got {value!r}")
    return number


def duration(allow_zero: bool) -> Check:
    def check(value: Any) -> Duration:
        if isinstance(value, Duration) and value.seconds >= 0:  # from Python overrides
            value = str(value)
        if not isinstance(value, str):
            raise ValueError(f"expected a duration string like 30s, 5m or 1h, got {value!r}")
        try:
            parsed = Duration.parse(value.strip())
        except ValueError:
            raise ValueError(f"must be a duration like 30s, 5m or 1h (no sign), got {value!r}") \
                from None
        if parsed.seconds == 0 and not allow_zero:
            raise ValueError(f"must be longer than 0s, got {value!r}")
        return parsed

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def dashboard_uid(value: Any) -> str:
    text = string(value)
    if not re.match(r"^[a-zA-Z0-9_-]{1,40}$", text):
        raise ValueError(f"must be 1 to 40 letters, digits, '-' or '_' (a Grafana uid), "
                         f"got {value!r}")
    return text


def title(value: Any) -> str:
    text = string(value)
    if not text.strip() or not text.isprintable():
        raise ValueError(f"must be a non-empty line of text, got {value!r}")
    return text


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return check


def url(value: Any) -> str:
    text = string(value).strip().rstrip("/")
    if text and not re.match(r"^https?://[^\s/]+", text):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return text


def selector(value: Any) -> str:
    """PromQL label matchers, the syntax ``dashboard --selector`` takes too."""
    try:
        return ", ".join(parse_matchers(string(value)))
    except SelectorError as exc:
        raise ValueError(f'{exc} (like job="livekit-agents")') from None


def label_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of label names, got {value!r}")
    for label in value:
        if not LABEL_NAME.match(label):
            raise ValueError(f"{label!r} is not a valid label name")
        if label in RESERVED_LABELS:
            raise ValueError(f"{label!r} is used by the rules themselves and cannot be one")
    if len(set(value)) != len(value):
        raise ValueError(f"lists a label twice: {value!r}")
    return tuple(value)


def name_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of agent names, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"lists a name twice: {value!r}")
    return tuple(value)


def label_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of label names to strings, got {value!r}")
    for key, val in value.items():
        if not isinstance(key, str) or not LABEL_NAME.match(key):
            raise ValueError(f"{key!r} is not a valid label name")
        if not isinstance(val, str):
            raise ValueError(f"value of {key!r} must be a string, got {val!r}")
    return dict(value)


def k8s_name(allow_empty: bool) -> Check:
    def check(value: Any) -> str:
        text = string(value)
        if (text or not allow_empty) and not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", text):
            raise ValueError(f"must be a Kubernetes object name (lower case, digits, '-'), "
                             f"got {value!r}")
        return text

    return check


# --- the schema -----------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One leaf key: its default (as written in YAML), its check and one line of doc."""

    default: Any
    check: Check
    doc: str


Schema = Mapping[str, "Option | Section"]


@dataclass(frozen=True)
class Section:
    doc: str
    keys: Schema


# keys every alert has, documented once in the example
_COMMON = {
    "enabled": Option(True, boolean, "render this alert (true/false)"),
    "severity": Option("warning", one_of(*SEVERITIES),
                       "critical pages, warning opens a ticket, info is for dashboards"),
    "for": Option("0s", duration(allow_zero=True),
                  "how long the condition must hold before the alert fires"),
    "keep_firing_for": Option("0s", duration(allow_zero=True),
                              "how long the alert keeps firing after its condition stops "
                              "(a failed scrape must not resolve a page; Prometheus 2.42+)"),
}


def _alert(summary_doc: str, severity: str, for_: str, keep_firing_for: str = "0s",
           **params: Option) -> Section:
    return Section(summary_doc, {
        "enabled": _COMMON["enabled"],
        "severity": replace(_COMMON["severity"], default=severity),
        "for": replace(_COMMON["for"], default=for_),
        "keep_firing_for": replace(_COMMON["keep_firing_for"], default=keep_firing_for),
        **params,
    })


def _window(default: str, what: str) -> Option:
    return Option(default, duration(allow_zero=False), what)


ALERTS: dict[str, Section] = {
    "no_capacity": _alert(
        "callers are being lost: no worker of an agent can take a job now, or, within the "
        "window, every worker refused offers as full or all were full at once", "critical",
        "1m", "5m",
        window=_window("2m", "window the refusals and the time spent full are counted over"),
        all_full_ratio_above=Option(0.1, number_in(0, 1, high_open=True),
                                    "fire when every worker was full at once for more than "
                                    "this fraction of the window (a lower bound from the "
                                    "workers' full seconds)")),
    "workers_gone": _alert(
        "every worker of an agent name disappeared after there were some", "critical", "2m",
        "2m",
        lookback=Option("6h", duration(allow_zero=False),
                        "how far back workers must have existed; the alert resolves itself "
                        "this long after the last worker vanished"),
        scrape_failure_grace=_window("5m", "while a target of the same cluster and namespace "
                                     "has been failing scrapes for less than this, vanished "
                                     "series are a scrape gap, not gone workers")),
    "job_launches_failing": _alert(
        "jobs assigned to a worker are not launched (no job process could be acquired or "
        "launched): each one is a caller with no agent", "critical", "1m", "5m",
        window=_window("5m", "window the failures and the assignments are counted over")),
    "job_process_init_failures": _alert(
        "job processes fail to start or initialise, while jobs still launch", "warning", "0s",
        window=_window("15m", "window the failures are counted over")),
    "capacity_low": _alert(
        "fleet headroom below a fraction of its capacity", "warning", "15m",
        headroom_below=Option(0.2, number_in(0, 1, low_open=True),
                              "fire while headroom (0..1) is below this fraction")),
    "capacity_exhaustion_predicted": _alert(
        "headroom reaches zero within the horizon on the current trend", "warning", "10m",
        horizon=Option("1h", duration(allow_zero=False),
                       "how far ahead the trend is extrapolated"),
        lookback=Option("1h", duration(allow_zero=False),
                        "how much history the trend is fitted on"),
        trend_window=_window("5m", "the headroom must also be falling over this recent window "
                             "(a step down followed by a flat line is not a trend)"),
        headroom_below=Option(0.5, number_in(0, 1, low_open=True),
                              "only predict while headroom is already below this fraction")),
    "job_rejections_high": _alert(
        "a large share of job offers is refused for lack of capacity or by a failing request "
        "handler (routing refusals by on_request do not count)", "warning", "10m",
        ratio_above=Option(0.2, number_in(0, 1, high_open=True),
                           "fire while refused / offered over 5m is above this"),
        min_requests_per_second=Option(0.05, non_negative,
                                       "ignore agents offered fewer jobs per second than this")),
    "assignment_timeouts": _alert(
        "accepted jobs whose assignment never arrived", "warning", "0s",
        count_above=Option(0, non_negative,
                           "fire while more timeouts than this happened in 5m")),
    "jobs_failing": _alert(
        "a share of the jobs that ended failed", "warning", "5m",
        window=Option("15m", duration(allow_zero=False), "window the failures are counted over"),
        ratio_above=Option(0.1, number_in(0, 1, high_open=True),
                           "fire while failed / (finished, or failed when more) over the window "
                           "is above this"),
        min_failures=Option(3, non_negative, "and at least this many jobs failed in the window")),
    "worker_stuck_full": _alert(
        "a worker reports full for far longer than a job lasts", "warning", "0s",
        window=_window("1h", "window the worker's full seconds are counted over"),
        full_ratio_above=Option(0.95, number_in(0, 1, high_open=True),
                                "fire when the worker was full, without draining, for more "
                                "than this fraction of the window")),
    "worker_flapping": _alert(
        "a worker keeps switching between full and available", "info", "15m",
        window=Option("15m", duration(allow_zero=False), "window the transitions are counted over"),
        transitions_at_least=Option(30, non_negative,
                                    "fire while the worker turned full at least this often in "
                                    "the window (30 in 15m: once every 30 s)")),
    "worker_not_registered": _alert(
        "a worker process runs but is not registered with the LiveKit server", "warning", "5m"),
    "load_function_errors": _alert(
        "load_fnc raises or returns a value that is not a load", "warning", "0s"),
    "load_stale": _alert(
        "the SDK stopped calling load_fnc (its load loop dies at the first exception), so the "
        "load the server sees is frozen", "warning", "5m",
        window=Option("2m", duration(allow_zero=False), "window the load_fnc calls are counted "
                      "over"),
        calls_per_second_below=Option(0.2, number_in(0, 2, low_open=True),
                                      "alert when load_fnc runs less often than this; the SDK "
                                      "calls it twice a second")),
    "load_threshold_above_target_load": _alert(
        "a worker's load_threshold is above the server's target_load", "warning", "15m"),
    "target_down": _alert("Prometheus cannot scrape a worker", "warning", "5m"),
    "exporter_hooks_detached": _alert(
        "an exporter hook into a worker is not attached: that part of the worker is not "
        "observed", "warning", "10m"),
    "exporter_metrics_missing": _alert(
        "a target matched by the selector is scraped but exposes no livekit_agents_* samples",
        "warning", "10m"),
    "selector_matches_nothing": _alert(
        "the selector matches no target at all, so every other alert is silent (disable it "
        "when the whole pack's fleet may scale to zero)", "warning", "15m"),
    "exporter_errors": _alert(
        "the exporter caught failures inside itself: some numbers may be missing", "warning",
        "0s", window=_window("15m", "window the errors are counted over")),
    "effective_load_unknown": _alert(
        "the exporter cannot read a worker's effective load from the SDK (NaN)", "warning",
        "10m"),
}

from .dispatch_slo_config import SERVER_LOG_SECTION  # noqa: E402 - needs the names above

SCHEMA: Schema = {
    "selector": Option('job="livekit-agents"', selector,
                       "label matchers added to every raw series selector (an empty string "
                       "matches every target; target_down then has to be disabled)"),
    "aggregation_labels": Option(["cluster", "namespace"], label_list,
                                 "target labels kept next to agent_name when aggregating over "
                                 "workers (a label no series has is harmless)"),
    "worker_labels": Option(["instance"], label_list,
                            "labels that tell one worker process from another besides the "
                            "aggregation labels: series that agree on them are one worker "
                            "read twice (two scrape configs, an HA pair) and count once"),
    "scale_to_zero_agents": Option([], name_list,
                                   "agent names allowed to scale to zero workers (KEDA "
                                   "minReplicaCount: 0): WorkersGone ignores them"),
    "server_target_load": Option(0.7, number_in(0, 1, low_open=True),
                                 "the LiveKit server's agents.target_load: a worker reporting "
                                 "this load or more wins no job"),
    "runbook_base_url": Option(
        "https://github.com/livekit-agents-exporter/livekit-agents-exporter/blob/main/alerts/"
        "runbooks.md", url,
        "URL of alerts/runbooks.md (or your copy); '#<alertname in lower case>' is appended"),
    "grafana_url": Option("", url,
                          "base URL of your Grafana; when set, alerts link the saturation "
                          "dashboard in a dashboard_url annotation"),
    "dashboard_uid": Option("livekit-agents-saturation", dashboard_uid,
                            "uid of the saturation dashboard: the one the alerts link, and "
                            "the one `livekit-agents-exporter dashboard` renders"),
    "dashboard_title": Option("LiveKit Agents / Worker saturation", title,
                              "title of the dashboard `livekit-agents-exporter dashboard` "
                              "renders"),
    "prometheus_rule": Section("metadata of the PrometheusRule object (--format operator)", {
        "name": Option("livekit-agents", k8s_name(allow_empty=False), "metadata.name"),
        "namespace": Option("", k8s_name(allow_empty=True),
                            "metadata.namespace (empty: left out, kubectl's namespace applies)"),
        "labels": Option({}, label_map,
                         "metadata.labels, e.g. the ones your Prometheus ruleSelector matches"),
    }),
    "alerts": Section("one entry per alert; every alert has these keys, some have thresholds too:",
                      ALERTS),
    "server_log": SERVER_LOG_SECTION,
}


def alert_name(key: str) -> str:
    """``no_capacity`` -> ``LiveKitAgentsNoCapacity``."""
    return ALERT_PREFIX + "".join(word.capitalize() for word in key.split("_"))


# --- the validated configuration --------------------------------------------------------


@dataclass(frozen=True)
class AlertConfig:
    key: str
    enabled: bool
    severity: str
    for_: Duration
    params: Mapping[str, Any] = field(default_factory=dict)
    keep_firing_for: Duration = Duration(0)

    @property
    def name(self) -> str:
        return alert_name(self.key)


@dataclass(frozen=True)
class RulesConfig:
    selector: str
    aggregation_labels: tuple[str, ...]
    worker_labels: tuple[str, ...]
    scale_to_zero_agents: tuple[str, ...]
    server_target_load: float
    runbook_base_url: str
    grafana_url: str
    dashboard_uid: str
    dashboard_title: str
    prometheus_rule: Mapping[str, Any]
    alerts: Mapping[str, AlertConfig]
    server_log: Mapping[str, Any] = field(default_factory=dict)  # its alerts are in alerts

    def alert(self, key: str) -> AlertConfig:
        return self.alerts[key]

    def scaled(self, factor: float) -> RulesConfig:
        """The same configuration with every alert's ``for:`` and ``keep_firing_for:``
        multiplied by ``factor``.

        For fast end-to-end runs against a real Prometheus; windows and lookbacks are
        left alone (override them explicitly when needed).
        """
        if not factor > 0:
            raise ValueError(f"factor must be > 0, got {factor!r}")
        return replace(self, alerts={
            key: replace(a, for_=a.for_.scaled(factor),
                         keep_firing_for=a.keep_firing_for.scaled(factor))
            for key, a in self.alerts.items()})


def _walk(schema: Schema, data: Any, source: str, path: str) -> dict[str, Any]:
    """Checks ``data`` against ``schema``: returns the normalised subset it sets."""
    section = ConfigMap(data, source, path)  # a mapping with string keys, or ConfigError
    out: dict[str, Any] = {}
    for key in list(section):
        spec = schema.get(key)
        if spec is None:
            section.finish(known=schema)  # every key before this one was taken: raises for it
            continue
        value = section.value(key)
        if isinstance(spec, Section):
            out[key] = _walk(spec.keys, value, source, section.path(key))
            continue
        try:
            out[key] = spec.check(value)
        except ValueError as exc:
            raise section.error(key, str(exc)) from None
    section.finish(known=schema)
    return out


def _defaults(schema: Schema) -> dict[str, Any]:
    return {key: _defaults(spec.keys) if isinstance(spec, Section) else spec.check(spec.default)
            for key, spec in schema.items()}


def _merge(schema: Schema, base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        spec = schema[key]
        merged[key] = _merge(spec.keys, base[key], value) if isinstance(spec, Section) else value
    return merged


def load_config(path: str | Path | None = None,
                overrides: Mapping[str, Any] | None = None) -> RulesConfig:
    """Defaults, updated from the YAML file at ``path``, then from ``overrides``.

    ``overrides`` has the file's shape, e.g. ``{"selector": 'job="demo"',
    "alerts": {"no_capacity": {"for": "10s"}}}``. Raises ``ConfigError``.
    """
    values = _defaults(SCHEMA)
    sources: list[tuple[str, Any]] = []
    if path is not None:
        data = read_yaml(Path(path))
        sources.append((str(path), {} if data is None else data))
    if overrides is not None:
        sources.append(("overrides", dict(overrides)))
    for source, data in sources:
        values = _merge(SCHEMA, values, _walk(SCHEMA, data, source, ""))
        _check_together(values, source)
    return _build(values)


def _check_together(values: dict[str, Any], source: str) -> None:
    """Keys that are valid alone but not in combination."""
    alerts = values["alerts"]
    both = sorted(set(values["worker_labels"]) & set(values["aggregation_labels"]))
    if both:
        raise ConfigError(source, "worker_labels",
                          f"{', '.join(both)} is already an aggregation label")
    if alerts["target_down"]["enabled"] and not values["selector"]:
        raise ConfigError(source, "selector", "must not be empty while alerts.target_down is "
                          "enabled (it would watch every target's up)")
    gone = alerts["workers_gone"]
    if gone["enabled"] and gone["for"] >= gone["lookback"]:
        raise ConfigError(source, "alerts.workers_gone.for", "must be shorter than "
                          f"alerts.workers_gone.lookback ({gone['lookback']}), or the alert "
                          "can never fire")


def _build(values: dict[str, Any]) -> RulesConfig:
    alerts = {}
    for key, raw in {**values["alerts"], **values["server_log"]["alerts"]}.items():
        params = {k: v for k, v in raw.items() if k not in _COMMON}
        alerts[key] = AlertConfig(key, raw["enabled"], raw["severity"], raw["for"], params,
                                  raw["keep_firing_for"])
    return RulesConfig(
        selector=values["selector"],
        aggregation_labels=values["aggregation_labels"],
        worker_labels=values["worker_labels"],
        scale_to_zero_agents=values["scale_to_zero_agents"],
        server_target_load=values["server_target_load"],
        runbook_base_url=values["runbook_base_url"],
        grafana_url=values["grafana_url"],
        dashboard_uid=values["dashboard_uid"],
        dashboard_title=values["dashboard_title"],
        prometheus_rule=values["prometheus_rule"],
        alerts=alerts,
        server_log={k: v for k, v in values["server_log"].items() if k != "alerts"},
    )


# --- the documented example -----------------------------------------------------------


def _yaml_scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def example_config() -> str:
    """Every key with its default and one comment line: ``alerts/config.example.yaml``."""
    lines = [
        "# livekit-agents-exporter alert pack: every configuration key with its default.",
        "# Copy what you change into your own file (unset keys keep their defaults) and render:",
        "#   livekit-agents-exporter rules --config my-config.yaml -o livekit-agents.rules.yaml",
        "# Generated from the schema by `make generate`; do not edit.",
    ]

    def emit(schema: Schema, indent: str, in_alert: bool = False) -> None:
        for key, spec in schema.items():
            if isinstance(spec, Section):
                if schema is ALERTS:
                    lines.append(f"{indent}# {alert_name(key)}: {spec.doc}")
                else:
                    lines.append(f"{indent}# {spec.doc}")
                if spec.keys is ALERTS:
                    lines.extend(f"{indent}#   {common}: {option.doc}"
                                 for common, option in _COMMON.items())
                lines.append(f"{indent}{key}:")
                emit(spec.keys, indent + "  ", schema is ALERTS)
            elif in_alert and key in _COMMON:
                lines.append(f"{indent}{key}: {_yaml_scalar(spec.default)}")
            else:
                lines.append(f"{indent}{key}: {_yaml_scalar(spec.default)}  # {spec.doc}")

    emit(SCHEMA, "")
    return "\n".join(lines) + "\n"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- the documented reference (docs/MIXIN_CONFIG.md) -----------------------------------

KEYS_TABLE_BEGIN = "<!-- mixin-keys:begin (generated by `make generate`) -->"
KEYS_TABLE_END = "<!-- mixin-keys:end -->"
ALERTS_TABLE_BEGIN = "<!-- mixin-alerts:begin (generated by `make generate`) -->"
ALERTS_TABLE_END = "<!-- mixin-alerts:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def keys_table() -> str:
    """Every key that is not an alert's, with its default and meaning (Markdown)."""
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]

    def emit(schema: Schema, prefix: str) -> None:
        for key, spec in schema.items():
            if isinstance(spec, Section):
                if key != "alerts":
                    emit(spec.keys, f"{prefix}{key}.")
                continue
            lines.append(f"| `{prefix}{key}` | `{_cell(_yaml_scalar(spec.default))}` | "
                         f"{_cell(spec.doc)} |")

    emit(SCHEMA, "")
    return "\n".join(lines)


def alerts_table() -> str:
    """Every alert's keys with their defaults (Markdown); ``enabled`` is true for all."""
    from .dispatch_slo_config import SERVER_LOG_ALERTS

    lines = ["| key | alert | keys and defaults |", "| --- | --- | --- |"]
    for prefix, alerts in (("alerts.", ALERTS), ("server_log.alerts.", SERVER_LOG_ALERTS)):
        for key, section in alerts.items():
            keys = ", ".join(f"`{name}: {_cell(_yaml_scalar(option.default))}`"
                             for name, option in section.keys.items()
                             if isinstance(option, Option) and name != "enabled")
            lines.append(f"| `{prefix}{key}` | `{alert_name(key)}` | {keys} |")
    return "\n".join(lines)
