"""Alerting rules: one builder per alert, reading the recorded series where it can.

Agent alerts are per (aggregation labels, ``agent_name``); worker alerts keep every
target label of the worker. Each alert carries ``severity``, a static ``summary``, a
templated ``description``, a ``runbook_url`` and, when a Grafana URL is configured and
the alert is about an agent, a ``dashboard_url``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from . import recording as r
from .config import ALERTS, AlertConfig, RulesConfig
from .promql import RATE_WINDOW, RATE_WINDOW_SECONDS, Q, number

GROUP_NAME = "livekit-agents.alerts"

Scope = Literal["agent", "worker", "target"]


@dataclass(frozen=True)
class Text:
    """What a builder knows about the wording: the phrases naming the subject."""

    agent: str  # 'agent "support" in cluster eu'
    worker: str  # 'worker 10.0.0.1:10781 of agent "support" in cluster eu'
    where: str  # ' in cluster eu'


Builder = Callable[[Q, AlertConfig, Text], tuple[str, str]]


@dataclass(frozen=True)
class AlertDef:
    scope: Scope
    summary: str
    build: Builder  # -> (expr, description)


def _cap(phrase: str) -> str:
    return phrase[:1].upper() + phrase[1:]


def _pct(ratio: float) -> str:
    """A configured fraction as the description shows it: 0.2 -> 20%."""
    return f"{ratio * 100:g}%"


def _no_capacity(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    return (f"""
{r.WORKERS}
  and
{r.WORKERS_AVAILABLE} == 0
""", f"None of the {{{{ $value }}}} workers of {t.agent} can take a job (each is full, "
        f"draining, not registered or loaded at the server's target_load "
        f"{q.target_load()} or above): the LiveKit server answers \"no worker available\" "
        f"and those calls are lost.")


def _workers_gone(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    lookback = a.params["lookback"]
    return (f"""
max_over_time({r.WORKERS}[{lookback}])
  unless
{r.WORKERS}
""", f"{_cap(t.agent)} had up to {{{{ $value }}}} workers in the last {lookback} and "
        f"now Prometheus sees none: every dispatch to it fails with \"no worker available\".")


def _capacity_low(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    below = a.params["headroom_below"]
    return (f"{r.CAPACITY_HEADROOM} < {number(below)}",
            f"{_cap(t.agent)} has {{{{ $value | humanizePercentage }}}} of its job "
            f"capacity left (alert below {_pct(below)}): a burst of calls will find every "
            f"worker full.")


def _exhaustion_predicted(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    p = a.params
    return (f"""
{r.CAPACITY_HEADROOM} < {number(p["headroom_below"])}
  and
predict_linear({r.CAPACITY_HEADROOM}[{p["lookback"]}], {number(p["horizon"].seconds)}) <= 0
""", f"{_cap(t.agent)} has {{{{ $value | humanizePercentage }}}} of its job capacity "
        f"left and, on the trend of the last {p['lookback']}, runs out within {p['horizon']}.")


def _rejections_high(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    p = a.params
    return (f"""
{r.JOB_REQUESTS_REJECTED_RATIO} > {number(p["ratio_above"])}
  and
{r.JOB_REQUESTS_RATE} >= {number(p["min_requests_per_second"])}
""", f"Workers of {t.agent} refused {{{{ $value | humanizePercentage }}}} of the job offers "
        f"of the last {RATE_WINDOW} (alert above {_pct(p['ratio_above'])}); the reason label "
        f"of the refusals says why.")


def _assignment_timeouts(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    return (f"{r.ASSIGNMENT_TIMEOUTS_RATE} * {RATE_WINDOW_SECONDS} > "
            f"{number(a.params['count_above'])}",
            f"Workers of {t.agent} accepted about {{{{ printf \"%.0f\" $value }}}} jobs in the "
            f"last {RATE_WINDOW} whose assignment never arrived (AssignmentTimeoutError): each "
            f"one is a lost call.")


def _jobs_failing(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    p = a.params
    failed = f"sum {q.by()} (increase({q.raw('jobs_failed')}[{p['window']}]))"
    finished = f"sum {q.by()} (increase({q.raw('jobs_finished')}[{p['window']}]))"
    # the failure count is filtered before dividing, so Prometheus selects it once, not twice
    return (f"""
({failed} >= {number(p["min_failures"])})
  /
({finished} > 0)
  > {number(p["ratio_above"])}
""", f"{{{{ $value | humanizePercentage }}}} of the jobs of {t.agent} that ended in the last "
        f"{p['window']} failed (alert above {_pct(p['ratio_above'])} with at least "
        f"{number(p['min_failures'])} failures).")


def _stuck_full(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    return (f"""
{q.raw("worker_full")} == 1
  and
{q.raw("worker_registered")} == 1
  unless
{q.raw("worker_draining")} == 1
""", f"{_cap(t.worker)} has reported full, without draining, for more than {a.for_}, "
        f"far longer than a job lasts: its load is stuck and its capacity is lost.")


def _flapping(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    p = a.params
    return (f"increase({q.raw('worker_full_transitions')}[{p['window']}]) > "
            f"{number(p['transitions_above'])}",
            f"{_cap(t.worker)} turned full {{{{ printf \"%.0f\" $value }}}} times in the "
            f"last {p['window']} (alert above {number(p['transitions_above'])}): its load hovers "
            f"around its threshold and job offers race with its status.")


def _not_registered(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    return (f"{q.raw('worker_registered')} == 0",
            f"{_cap(t.worker)} runs but has not been registered with the LiveKit server "
            f"for {a.for_}: it receives no job offers.")


def _load_function_errors(q: Q, a: AlertConfig, t: Text) -> tuple[str, str]:
    return (f"increase({q.raw('load_fnc_errors')}[{RATE_WINDOW}]) > 0",
            f"The load_fnc of {t.worker} failed {{{{ printf \"%.0f\" $value }}}} times in the "
            f"last {RATE_WINDOW} with error \"{{{{ $labels.error }}}}\": the load it reports "
            f"is wrong or missing, and a missing load keeps it from jobs.")


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


DEFINITIONS: dict[str, AlertDef] = {
    "no_capacity": AlertDef(
        "agent", "No worker of an agent can take a job, so dispatches to it fail.",
        _no_capacity),
    "workers_gone": AlertDef(
        "agent", "Every worker of an agent has disappeared.", _workers_gone),
    "capacity_low": AlertDef(
        "agent", "An agent's workers are close to full.", _capacity_low),
    "capacity_exhaustion_predicted": AlertDef(
        "agent", "An agent's workers will run out of capacity soon on the current trend.",
        _exhaustion_predicted),
    "job_rejections_high": AlertDef(
        "agent", "Workers refuse a large share of the job offers they receive.",
        _rejections_high),
    "assignment_timeouts": AlertDef(
        "agent", "Accepted jobs never receive their assignment from the LiveKit server.",
        _assignment_timeouts),
    "jobs_failing": AlertDef(
        "agent", "A large share of an agent's jobs fail.", _jobs_failing),
    "worker_stuck_full": AlertDef(
        "worker", "A worker has been full for far longer than a job lasts.", _stuck_full),
    "worker_flapping": AlertDef(
        "worker", "A worker keeps switching between full and available.", _flapping),
    "worker_not_registered": AlertDef(
        "worker", "A worker runs but is not registered with the LiveKit server.",
        _not_registered),
    "load_function_errors": AlertDef(
        "worker", "A worker's load function raises or returns invalid values.",
        _load_function_errors),
    "load_stale": AlertDef(
        "worker", "A worker's reported load is frozen: the SDK stopped calling its load function.",
        _load_stale),
    "load_threshold_above_target_load": AlertDef(
        "worker", "A worker's load_threshold is above the server's target_load, so part of "
                  "its capacity wins no job.", _threshold_above_target),
    "target_down": AlertDef(
        "target", "Prometheus cannot scrape a LiveKit Agents worker.", _target_down),
}
assert DEFINITIONS.keys() == ALERTS.keys(), "every configurable alert needs a definition"


def _text(config: RulesConfig) -> Text:
    where = "".join(f"{{{{ with $labels.{label} }}}} in {label} {{{{ . }}}}{{{{ end }}}}"
                    for label in config.aggregation_labels)
    agent = f'agent "{{{{ $labels.agent_name }}}}"{where}'
    return Text(agent=agent, worker=f"worker {{{{ $labels.instance }}}} of {agent}", where=where)


def _dashboard_url(config: RulesConfig, scope: Scope) -> str | None:
    if not config.grafana_url or scope == "target":
        return None
    labels = ["agent_name", *config.aggregation_labels] + (["instance"] if scope == "worker"
                                                            else [])
    query = "&".join(f"var-{label}={{{{ $labels.{label} | urlquery }}}}" for label in labels)
    return f"{config.grafana_url}/d/{config.dashboard_uid}?{query}"


def alerting_rules(config: RulesConfig) -> list[dict[str, Any]]:
    q, text = Q(config), _text(config)
    rules = []
    for key, definition in DEFINITIONS.items():
        alert = config.alert(key)
        if not alert.enabled:
            continue
        expr, description = definition.build(q, alert, text)
        annotations = {
            "summary": definition.summary,
            "description": description,
            "runbook_url": f"{config.runbook_base_url}#{alert.name.lower()}",
        }
        dashboard = _dashboard_url(config, definition.scope)
        if dashboard:
            annotations["dashboard_url"] = dashboard
        rules.append({
            "alert": alert.name,
            "expr": expr.strip("\n"),
            "for": str(alert.for_),
            "labels": {"severity": alert.severity},
            "annotations": annotations,
        })
    return rules
