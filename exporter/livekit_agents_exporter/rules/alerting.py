"""Alerting rules: one builder per alert, reading the recorded series where it can.

Agent alerts are per (aggregation labels, ``agent_name``); worker alerts keep every
target label of the worker. Each alert carries ``severity``, a static ``summary``, a
templated ``description``, a ``runbook_url`` and, when a Grafana URL is configured and
the alert is about an agent, a ``dashboard_url``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ..promql import (
    CAPACITY_REASONS,
    HANDLER_FAILURE_REASONS,
    RATE_WINDOW,
    RATE_WINDOW_SECONDS,
    Q,
    number,
    record_name,
)
from . import recording
from .config import ALERTS, AlertConfig, RulesConfig

GROUP_NAME = "livekit-agents.alerts"
WORKER_GROUP_NAME = "livekit-agents.worker.alerts"
MONITORING_GROUP_NAME = "livekit-agents.monitoring.alerts"

Scope = Literal["agent", "worker", "target", "pack"]
# What an alert is about; Alertmanager inhibits by it (a critical page of a concern silences
# the warnings of the same concern for the same agent), so another rules module plugs in by
# labelling its alerts the same way.
Concern = Literal["capacity", "jobs", "worker", "monitoring"]
CONCERNS: tuple[str, ...] = get_args(Concern)


@dataclass(frozen=True)
class Text:
    """What a builder knows about the wording: the phrases naming the subject."""

    agent: str  # 'agent "support" in cluster eu'
    worker: str  # 'worker 10.0.0.1:10781 of agent "support" in cluster eu'
    where: str  # ' in cluster eu'
    group: str  # Go template printf arguments naming the alert's agent group (see _evidence)


Builder = Callable[[Q, AlertConfig, Text], tuple[str, str]]
# Recording rules an alert reads more than once, as (record, expr): evaluated just before
# the alert in its own group, so the alert sees them from the same evaluation.
Inputs = Callable[[Q, AlertConfig], list[tuple[str, str]]]


def _no_inputs(q: Q, a: AlertConfig) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class AlertDef:
    scope: Scope
    concern: Concern
    summary: str
    build: Builder  # -> (expr, description)
    inputs: Inputs = _no_inputs


_AGENT_START = "{{ with $labels.agent_name }}agent"


def _cap(phrase: str) -> str:
    """The phrase at the start of a sentence (both branches of the agent phrase)."""
    if phrase.startswith(_AGENT_START):
        return phrase.replace("}}agent", "}}Agent", 1).replace("{{ else }}the", "{{ else }}The", 1)
    return phrase[:1].upper() + phrase[1:]


def _pct(ratio: float) -> str:
    """A configured fraction as the description shows it: 0.2 -> 20%."""
    return f"{ratio * 100:g}%"


def _plural(noun: str, value: str = "$value") -> str:
    """``{{ $value }} workers`` / ``1 worker`` (Go template)."""
    return f"{noun}{{{{ if ne {value} 1.0 }}}}s{{{{ end }}}}"


def _count(noun: str) -> str:
    return f"{{{{ printf \"%.0f\" $value }}}} {_plural(noun)}"


def _evidence(q: Q, expr: str, number: str = "%.0f") -> str:
    """A figure queried when the alert fires, for its description: ``expr`` is PromQL
    with ``{G}`` where the matchers of the alert's own agent group go (inside braces)."""
    matchers = ", ".join(f"{label}=%q" for label in q.agent_labels)
    text = expr.replace("%", "%%").replace("{G}", matchers)
    args = " ".join(f"$labels.{label}" for label in q.agent_labels)
    args = " ".join([args] * expr.count("{G}"))
    return (f"{{{{ with printf `{text}` {args} | query }}}}"
            f"{{{{ . | first | value | printf \"{number}\" }}}}{{{{ else }}}}0{{{{ end }}}}")


def _in_group(q: Q, selector: str) -> str:
    """``name{matchers}`` -> ``name{matchers, {G}}`` for ``_evidence``."""
    if selector.endswith("}"):
        return selector[:-1] + ", {G}}"
    return selector + "{{G}}"


def _capacity_refusals(q: Q, window: str) -> str:
    rejected = q.where("job_requests_rejected", f'reason=~"{q.reasons(CAPACITY_REASONS)}"')
    return q.dedup(f"increase({rejected}[{window}])")


def _full_fraction(q: Q, window: str) -> str:
    # the counter grows in steps of one status interval (2.5 s), so over a short window
    # its rate can read above 1: a worker is full at most all of the time
    return q.dedup(f"clamp_max(rate({q.raw('worker_full_seconds')}[{window}]), 1)")


def _no_capacity(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    """No worker can take a job now; or, within the window, every worker refused as full
    while the fleet was full at once (seen at an evaluation, or bounded from the full
    seconds): a dispatch is lost only when every worker of the node refuses it, so refusals
    that another worker absorbed (each worker refusing at its own time) do not page; or the
    fleet was all full at once for a share of the window."""
    p = a.params
    w = p["window"]
    refusals, full = _capacity_refusals(q, str(w)), _full_fraction(q, str(w))
    full_sum = _full_fraction_sum_name(w)
    expr = f"""
{recording.WORKERS}
  and
(
  {recording.WORKERS_AVAILABLE} == 0
    or
  (
    count {q.by()} ({refusals} > 0) >= {recording.WORKERS_REGISTERED}
      and
    (
      min_over_time({recording.WORKERS_AVAILABLE}[{w}]) == 0
        or
      {full_sum} - {recording.WORKERS} + 1 > 0
    )
  )
    or
  {full_sum} - {recording.WORKERS} + 1 > {number(p["all_full_ratio_above"])}
)
"""
    g_refusals = _capacity_refusals(q, str(w)).replace(
        q.where("job_requests_rejected", f'reason=~"{q.reasons(CAPACITY_REASONS)}"'),
        _in_group(q, q.where("job_requests_rejected",
                             f'reason=~"{q.reasons(CAPACITY_REASONS)}"')))
    g_full = full.replace(q.raw("worker_full_seconds"),
                          _in_group(q, q.raw("worker_full_seconds")))
    available = _evidence(q, f"{recording.WORKERS_AVAILABLE}{{{{G}}}}")
    refused = _evidence(q, f"sum({g_refusals})")
    refusing = _evidence(q, f"count({g_refusals} > 0)")
    # Bonferroni: the time all N workers were full at once is at least the sum of the times
    # each was full minus (N - 1) windows
    workers = f"sum({recording.WORKERS}{{{{G}}}})"
    all_full = _evidence(q, f"clamp_min(sum({g_full}) - {workers} + 1, 0) * "
                            f"{number(w.seconds)}")
    return (expr, f"Callers of {t.agent} are being lost for lack of capacity: of its "
                  f"{_count('worker')}, {available} can take a job now; in the last {w} they "
                  f"refused {refused} job offers as full or draining ({refusing} of them "
                  f"refused at least one) and were all full at once for at least {all_full}s. "
                  f"The LiveKit server drops a dispatch no worker takes (\"no worker "
                  f"available\").")


def _full_fraction_sum_name(window: object) -> str:
    return record_name("agent_name", "worker_full_seconds", f"sum_clamp_rate{window}")


def _no_capacity_inputs(q: Q, a: AlertConfig) -> list[tuple[str, str]]:
    """The per-agent sum of the fractions of the window each worker was full, read twice
    by the alert: recorded once, just before it in its group (the same evaluation)."""
    w = a.params["window"]
    return [(_full_fraction_sum_name(w), f"sum {q.by()} ({_full_fraction(q, str(w))})")]


def _workers_gone(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    p = a.params
    lookback, grace = p["lookback"], p["scrape_failure_grace"]
    seen = recording.WORKERS
    if q.config.scale_to_zero_agents:
        names = "|".join(_regex_escape(n) for n in q.config.scale_to_zero_agents)
        seen = f'{recording.WORKERS}{{agent_name!~"{names}"}}'
    agg = ", ".join(q.config.aggregation_labels)
    return (f"""
(
  max_over_time({seen}[{lookback}])
    unless
  {recording.WORKERS}
)
  unless on ({agg})
(
  {q.up()} == 0 and max_over_time({q.up()}[{grace}]) == 1
)
""", f"{_cap(t.agent)} had up to {_count('worker')} in the last {lookback} and now "
        f"Prometheus sees none, and no target of it is failing scrapes: every dispatch to it "
        f"fails with \"no worker available\".")


def _regex_escape(text: str) -> str:
    """A literal for an RE2 regex inside a PromQL double-quoted string."""
    escaped = "".join(f"\\{ch}" if ch in r".^$*+?()[]{}|\\" else ch for ch in text)
    return escaped.replace("\\", "\\\\").replace('"', '\\"')


def _job_launches_failing(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    w = a.params["window"]
    failures = q.where("job_process_failures", 'reason=~"acquire|launch"')
    return (f"""
sum without (reason) (increase({failures}[{w}])) > 0
  or
(
  increase({q.raw("job_assignments")}[{w}]) > 0
    unless
  increase({q.raw("jobs_launched")}[{w}]) > 0
)
""", f"About {_count('job')} assigned to {t.worker} in the last {w} could not be launched "
        f"(the SDK could not acquire or start a job process): each is a caller who accepted "
        f"the call and got no agent.")


def _job_process_init_failures(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    w = a.params["window"]
    failures = q.where("job_process_failures", 'reason="initialize"')
    return (f"increase({failures}[{w}]) > 0",
            f"Job processes of {t.worker} failed to start or initialise "
            f"{{{{ printf \"%.0f\" $value }}}} {_plural('time')} in the last {w} (\"error "
            f"initializing process\"): jobs wait for a process, and if none initialises, "
            f"assigned jobs are lost.")


def _capacity_low(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    below = a.params["headroom_below"]
    return (f"{recording.CAPACITY_HEADROOM} < {number(below)}",
            f"{_cap(t.agent)} has {{{{ $value | humanizePercentage }}}} of its job "
            f"capacity left (alert below {_pct(below)}): a burst of calls will find every "
            f"worker full.")


def _exhaustion_predicted(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    p = a.params
    return (f"""
{recording.CAPACITY_HEADROOM} < {number(p["headroom_below"])}
  and
predict_linear({recording.CAPACITY_HEADROOM}[{p["lookback"]}], {number(p["horizon"].seconds)}) <= 0
  and
deriv({recording.CAPACITY_HEADROOM}[{p["trend_window"]}]) < 0
""", f"{_cap(t.agent)} has {{{{ $value | humanizePercentage }}}} of its job capacity "
        f"left and, on the trend of the last {p['lookback']}, still falling, runs out within "
        f"{p['horizon']}.")


def _rejections_high(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    p = a.params
    reasons = q.reasons((*CAPACITY_REASONS, *HANDLER_FAILURE_REASONS))
    return (f"""
sum {q.by()} ({recording.JOB_REQUESTS_REJECTED_RATE}{{reason=~"{reasons}"}})
  /
({recording.JOB_REQUESTS_RATE} > 0)
  > {number(p["ratio_above"])}
  and
{recording.JOB_REQUESTS_RATE} >= {number(p["min_requests_per_second"])}
""", f"Workers of {t.agent} refused {{{{ $value | humanizePercentage }}}} of the job offers "
        f"of the last {RATE_WINDOW} because they were full or draining or their request "
        f"handler failed to answer (alert above {_pct(p['ratio_above'])}; refusals by "
        f"on_request do not count); the reason label of the refusals says which.")


def _assignment_timeouts(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    return (f"{recording.ASSIGNMENT_TIMEOUTS_RATE} * {RATE_WINDOW_SECONDS} > "
            f"{number(a.params['count_above'])}",
            f"Workers of {t.agent} accepted about {_count('job')} in the last {RATE_WINDOW} "
            f"whose assignment never arrived (AssignmentTimeoutError): each one is a lost "
            f"call.")


def _jobs_failing(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    p = a.params
    w = p["window"]
    failed = _failed_increase_name(w)
    finished_raw = q.raw("jobs_finished")
    finished = f"sum {q.by()} ({q.dedup(f'increase({finished_raw}[{w}])')})"
    # Jobs that fail and never end (the 1.2/1.3 zombies) are not in `finished`: divide by
    # the failures when they are more, so the share stays within 100%.
    return (f"""
({failed} >= {number(p["min_failures"])})
  /
((({finished} > {failed}) or {failed}) > 0)
  > {number(p["ratio_above"])}
""", f"{{{{ $value | humanizePercentage }}}} of the jobs of {t.agent} that ended or failed "
        f"in the last {w} failed (alert above {_pct(p['ratio_above'])} with at least "
        f"{number(p['min_failures'])} failures).")


def _failed_increase_name(window: object) -> str:
    return record_name("agent_name", "jobs_failed", f"increase{window}")


def _jobs_failing_inputs(q: Q, a: AlertConfig) -> list[tuple[str, str]]:
    """The per-agent failures of the window, all reasons, read three times by the alert:
    recorded once, just before it in its group (the same evaluation)."""
    w = a.params["window"]
    failed = q.dedup(f"increase({q.raw('jobs_failed')}[{w}])", "reason")
    return [(_failed_increase_name(w), f"sum {q.by()} ({failed})")]


def _stuck_full(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    p = a.params
    return (f"""
rate({q.raw("worker_full_seconds")}[{p["window"]}]) > {number(p["full_ratio_above"])}
  and
{q.raw("worker_registered")} == 1
  unless
{q.raw("worker_draining")} == 1
""", f"{_cap(t.worker)} reported full, without draining, for {{{{ $value | "
        f"humanizePercentage }}}} of the last {p['window']}, far longer than a job lasts: "
        f"its load is stuck and its capacity is lost.")


def _flapping(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    p = a.params
    return (f"increase({q.raw('worker_full_transitions')}[{p['window']}]) >= "
            f"{number(p['transitions_at_least'])}",
            f"{_cap(t.worker)} turned full {{{{ printf \"%.0f\" $value }}}} times in the "
            f"last {p['window']} (alert at {number(p['transitions_at_least'])}): its load "
            f"hovers around its threshold and job offers race with its status.")


def _not_registered(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    # a worker whose run() was never hooked reports 0 whatever its state: that is
    # ExporterHooksDetached's to say
    return (f"""
{q.raw('worker_registered')} == 0
  unless ignoring (hook)
{q.where('exporter_hooks_attached', 'hook="worker_run"')} == 0
""", f"{_cap(t.worker)} runs but has not been registered with the LiveKit server "
        f"for {a.for_}: it receives no job offers.")


def _load_function_errors(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    return (f"increase({q.raw('load_fnc_errors')}[{RATE_WINDOW}]) > 0",
            f"The load_fnc of {t.worker} failed {{{{ printf \"%.0f\" $value }}}} "
            f"{_plural('time')} in the last {RATE_WINDOW} with error "
            f"\"{{{{ $labels.error }}}}\": the load it reports is wrong or missing, and a "
            f"missing load keeps it from jobs.")


def _load_stale(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    p = a.params
    calls = f"rate({q.raw('load_fnc_duration_seconds', '_count')}[{p['window']}])"
    return (f"{calls} < {number(p['calls_per_second_below'])} "
            f"and {q.raw('worker_registered')} == 1",
            f"The SDK of {t.worker} called load_fnc {{{{ printf \"%.2f\" $value }}}} times a "
            f"second over the last {p['window']} (normally 2): its load loop has stopped, the "
            f"load it reports is frozen and no longer follows its jobs.")


def _threshold_above_target(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    return (f"{q.raw('worker_load_threshold_ratio')} > {q.target_load()}",
            f"{_cap(t.worker)} has load_threshold {{{{ $value }}}}, above the server's "
            f"target_load {q.target_load()}: between the two it reports available but wins "
            f"no job, so the capacity planned on its threshold does not exist.")


def _target_down(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    return (f"{q.up()} == 0",
            f"Prometheus has failed to scrape {{{{ $labels.instance }}}} (job "
            f"{{{{ $labels.job }}}}){t.where} for {a.for_}: that worker's metrics are missing "
            f"and the capacity alerts cannot see it.")


def _hooks_detached(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    # one alert per agent and hook, not per worker and hook: an SDK that moved an internal
    # detaches that hook on every worker at once (eleven alerts per worker otherwise)
    return (f"count {q.by('hook')} ({q.dedup(q.raw('exporter_hooks_attached'), 'hook')} == 0)",
            f"The exporter's \"{{{{ $labels.hook }}}}\" hook has not been attached for "
            f"{a.for_} on {_count('worker')} of {t.agent} (a hook into run() never saw the "
            f"worker run, or the SDK internal it needs has moved): what that hook counts is "
            f"missing, and the alerts built on it are blind there.")


def _metrics_missing(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    return (f"""
{q.up()} == 1
  unless on (job, instance)
{q.raw("worker_registered")}
""", f"Prometheus scrapes {{{{ $labels.instance }}}} (job {{{{ $labels.job }}}}){t.where}, "
        f"which the alert pack's selector matches, but it exposes no livekit_agents_* "
        f"samples: it is not an instrumented worker, or instrument() never ran in it, and the "
        f"pack cannot see it.")


def _selector_matches_nothing(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    return (f"absent({q.up()})",
            f"No target matches the alert pack's selector {{{{ `{q.up()}` }}}} for {a.for_}: "
            f"every other LiveKit Agents alert is silent. Check the scrape job's labels "
            f"against the rules' selector.")


def _exporter_errors(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    w = a.params["window"]
    return (f"increase({q.raw('exporter_errors')}[{w}]) > 0",
            f"The exporter of {t.worker} caught {{{{ printf \"%.0f\" $value }}}} "
            f"{_plural('failure')} of its \"{{{{ $labels.component }}}}\" part in the last "
            f"{w}; the worker was not affected, but the numbers that part produces may be "
            f"missing. Its log says what failed.")


def _effective_load_unknown(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    return (f"""
{recording.WORKER_EFFECTIVE_UNKNOWN} == 1
  and
{q.dedup(q.raw("worker_registered"))} == 1
""", f"The exporter cannot read the effective load of {t.worker} from the SDK (NaN) for "
        f"{a.for_}: the capacity rules judge it by its status alone and leave it out of the "
        f"headroom.")


DEFINITIONS: dict[str, AlertDef] = {
    "no_capacity": AlertDef(
        "agent", "capacity", "Callers of an agent are being lost: no worker can take their job.",
        _no_capacity, _no_capacity_inputs),
    "workers_gone": AlertDef(
        "agent", "capacity", "Every worker of an agent has disappeared.", _workers_gone),
    "job_launches_failing": AlertDef(
        "worker", "jobs", "Jobs assigned to a worker are not launched.", _job_launches_failing),
    "job_process_init_failures": AlertDef(
        "worker", "jobs", "Job processes of a worker fail to start or initialise.",
        _job_process_init_failures),
    "capacity_low": AlertDef(
        "agent", "capacity", "An agent's workers are close to full.", _capacity_low),
    "capacity_exhaustion_predicted": AlertDef(
        "agent", "capacity",
        "An agent's workers will run out of capacity soon on the current trend.",
        _exhaustion_predicted),
    "job_rejections_high": AlertDef(
        "agent", "capacity", "Workers refuse a large share of the job offers they receive.",
        _rejections_high),
    "assignment_timeouts": AlertDef(
        "agent", "jobs", "Accepted jobs never receive their assignment from the LiveKit server.",
        _assignment_timeouts),
    "jobs_failing": AlertDef(
        "agent", "jobs", "A large share of an agent's jobs fail.", _jobs_failing,
        _jobs_failing_inputs),
    "worker_stuck_full": AlertDef(
        "worker", "worker", "A worker has been full for far longer than a job lasts.",
        _stuck_full),
    "worker_flapping": AlertDef(
        "worker", "worker", "A worker keeps switching between full and available.", _flapping),
    "worker_not_registered": AlertDef(
        "worker", "worker", "A worker runs but is not registered with the LiveKit server.",
        _not_registered),
    "load_function_errors": AlertDef(
        "worker", "worker", "A worker's load function raises or returns invalid values.",
        _load_function_errors),
    "load_stale": AlertDef(
        "worker", "worker",
        "A worker's reported load is frozen: the SDK stopped calling its load function.",
        _load_stale),
    "load_threshold_above_target_load": AlertDef(
        "worker", "worker", "A worker's load_threshold is above the server's target_load, so "
                            "part of its capacity wins no job.", _threshold_above_target),
    "target_down": AlertDef(
        "target", "monitoring", "Prometheus cannot scrape a LiveKit Agents worker.",
        _target_down),
    "exporter_hooks_detached": AlertDef(
        "agent", "monitoring", "Part of a worker is not observed: an exporter hook is not "
                                "attached.", _hooks_detached),
    "exporter_metrics_missing": AlertDef(
        "target", "monitoring", "A scraped target exposes no LiveKit Agents metrics.",
        _metrics_missing),
    "selector_matches_nothing": AlertDef(
        "pack", "monitoring", "The alert pack's selector matches no target: every alert is "
                              "silent.", _selector_matches_nothing),
    "exporter_errors": AlertDef(
        "worker", "monitoring", "The exporter caught failures inside itself.", _exporter_errors),
    "effective_load_unknown": AlertDef(
        "worker", "monitoring", "The exporter cannot read a worker's effective load.",
        _effective_load_unknown),
}
assert DEFINITIONS.keys() == ALERTS.keys(), "every configurable alert needs a definition"


def _text(config: RulesConfig) -> Text:
    where = "".join(f"{{{{ with $labels.{label} }}}} in {label} {{{{ . }}}}{{{{ end }}}}"
                    for label in config.aggregation_labels)
    # automatic dispatch registers workers with an empty agent name: say so, not `agent ""`
    agent = (f'{{{{ with $labels.agent_name }}}}agent "{{{{ . }}}}"{{{{ else }}}}the '
             f'automatically dispatched agent (agent_name ""){{{{ end }}}}{where}')
    group = " ".join(f"$labels.{label}" for label in (*config.aggregation_labels, "agent_name"))
    return Text(agent=agent, worker=f"worker {{{{ $labels.instance }}}} of {agent}", where=where,
                group=group)


def _dashboard_url(config: RulesConfig, scope: Scope) -> str | None:
    if not config.grafana_url or scope in ("target", "pack"):
        return None
    labels = ["agent_name", *config.aggregation_labels] + (["instance"] if scope == "worker"
                                                            else [])
    query = "&".join(f"var-{label}={{{{ $labels.{label} | urlquery }}}}" for label in labels)
    return f"{config.grafana_url}/d/{config.dashboard_uid}?{query}"


def alert_rule(config: RulesConfig, key: str, definition: AlertDef) -> dict[str, Any]:
    """One alerting rule with the pack's labels and annotations (``severity``, ``concern``,
    summary, description, runbook and dashboard links); other rules modules use it too."""
    alert = config.alert(key)
    expr, description = definition.build(Q(config), alert, _text(config))
    annotations = {
        "summary": definition.summary,
        "description": description,
        "runbook_url": f"{config.runbook_base_url}#{alert.name.lower()}",
    }
    dashboard = _dashboard_url(config, definition.scope)
    if dashboard:
        annotations["dashboard_url"] = dashboard
    rule: dict[str, Any] = {"alert": alert.name, "expr": expr.strip("\n"),
                            "for": str(alert.for_)}
    if alert.keep_firing_for.seconds:
        rule["keep_firing_for"] = str(alert.keep_firing_for)
    rule["labels"] = {"severity": alert.severity, "concern": definition.concern}
    rule["annotations"] = annotations
    return rule


# One group per concern, evaluated concurrently, so that each fits well inside the
# evaluation interval at 10,000 workers (benchmarks/): alerts do not read each other, so
# where an alert is evaluated changes nothing it decides.
GROUPS: dict[str, tuple[str, ...]] = {
    GROUP_NAME: ("capacity", "jobs"),
    WORKER_GROUP_NAME: ("worker",),
    MONITORING_GROUP_NAME: ("monitoring",),
}
assert sorted(c for cs in GROUPS.values() for c in cs) == sorted(CONCERNS)


def alerting_rules(config: RulesConfig,
                   concerns: tuple[str, ...] = CONCERNS) -> list[dict[str, Any]]:
    """The enabled alerts of these concerns (all by default), in definition order, after
    the recording rules they read from their own group."""
    enabled = [(key, definition) for key, definition in DEFINITIONS.items()
               if definition.concern in concerns and config.alert(key).enabled]
    q = Q(config)
    inputs = [{"record": record, "expr": expr}
              for key, definition in enabled
              for record, expr in definition.inputs(q, config.alert(key))]
    return inputs + [alert_rule(config, key, definition) for key, definition in enabled]


def group_builder(name: str) -> Callable[[RulesConfig], list[dict[str, Any]]]:
    """The builder of one alert group of ``GROUPS``."""
    return lambda config: alerting_rules(config, GROUPS[name])
