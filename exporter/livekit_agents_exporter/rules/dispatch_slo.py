"""Rules on livekit-server's own record of dispatches: lost calls, and a dispatch SLO.

The series come from the mtail program in ``server-log/`` (``metrics.SERVER_LOG_CATALOGUE``).
The service level indicator is the share of logged dispatches that were assigned; the
objective (``server_log.slo_objective``, default 99.9%) leaves an error budget of
``1 - objective``. Alerts follow the multiwindow, multi-burn-rate form of the Google SRE
workbook ("Alerting on SLOs", table 5-8), for a 30-day budget:

- page when 2% of the budget burns in 1 hour (burn rate 14.4, confirmed over 5 minutes) or
  5% in 6 hours (burn rate 6, confirmed over 30 minutes);
- ticket when 10% burns in 3 days (burn rate 1, confirmed over 6 hours) or in 1 day at
  burn rate 3 (confirmed over 2 hours).

Lost dispatches page on their own too (``DispatchesLost``), with the cause from the log.
"""

from __future__ import annotations

from typing import Any

from .. import metrics
from ..promql import number, record_name
from .alerting import Scope, _dashboard_url
from .config import AlertConfig, RulesConfig

RECORDING_GROUP = "livekit-agents.server-log.rules"
ALERT_GROUP = "livekit-agents.server-log.alerts"
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# (burn rate, long window, short window): the workbook's recommended pairs
FAST_BURN = ((14.4, "1h", "5m"), (6.0, "6h", "30m"))
SLOW_BURN = ((3.0, "1d", "2h"), (1.0, "3d", "6h"))
LOST_RATIO = {w: record_name("agent_name", "server_dispatches_lost", f"ratio_rate{w}")
              for w in SLO_WINDOWS}

# what each cause means, for the DispatchesLost description (keys: metrics.SERVER_LOSS_CAUSES)
CAUSE_TEXT = {
    "no_worker_registered": "no worker of this agent name was registered with the server",
    "no_capacity": "every node's workers were full or loaded at the server's target_load",
    "all_refused": "every worker on the chosen node refused the job or was full",
    "availability_timeout": "the chosen worker did not answer the job offer within 10 s",
    "deadline_exceeded": "the dispatch request's deadline passed before a worker accepted",
    "other": "the server logged another error; read the log line",
}
assert tuple(CAUSE_TEXT) == metrics.SERVER_LOSS_CAUSES, "every loss cause needs a description"


class _S:
    """Selectors of the mtail series, with the server_log selector injected."""

    def __init__(self, config: RulesConfig) -> None:
        self.selector = config.server_log["selector"]
        labels = (*config.aggregation_labels, metrics.AGENT_LABEL)
        self.by = f"by ({', '.join(labels)})"
        self.by_cause = f"by ({', '.join((*labels, 'cause'))})"

    def raw(self, short: str) -> str:
        name = metrics.series(short)
        return f"{name}{{{self.selector}}}" if self.selector else name

    def up(self) -> str:
        return f"up{{{self.selector}}}" if self.selector else "up"


def _budget(config: RulesConfig) -> float:
    return round(1.0 - float(config.server_log["slo_objective"]), 12)


def _enabled(config: RulesConfig) -> bool:
    return bool(config.server_log.get("enabled", True))


def recording_rules(config: RulesConfig) -> list[dict[str, Any]]:
    """The lost-dispatch ratios the SLO alerts read; none when ``server_log.enabled`` is false."""
    if not _enabled(config):
        return []
    s = _S(config)
    lost, all_ = s.raw("server_dispatches_lost"), s.raw("server_dispatches")
    return [{"record": LOST_RATIO[w], "expr": (
        f"sum {s.by} (rate({lost}[{w}]))\n  /\n"
        f"(sum {s.by} (rate({all_}[{w}])) > 0)")} for w in SLO_WINDOWS]


def _lost(s: _S, a: AlertConfig, config: RulesConfig) -> tuple[str, str]:
    lost, window = s.raw("server_dispatches_lost"), a.params["window"]
    # a cause's series appears with its first loss, which increase() cannot see: a series
    # that did not exist a window ago counts with its whole value, the others by increase()
    expr = (f"sum {s.by_cause} (\n  ({lost} unless {lost} offset {window})\n    or\n"
            f"  increase({lost}[{window}])\n) > 0")
    causes = "".join(f'{{{{ {"if" if i == 0 else "else if"} eq $labels.cause "{cause}" }}}}{text}'
                     for i, (cause, text) in enumerate(CAUSE_TEXT.items()))
    where = "".join(f"{{{{ with $labels.{label} }}}} in {label} {{{{ . }}}}{{{{ end }}}}"
                    for label in config.aggregation_labels)
    return expr, ('livekit-server logged {{ printf "%.0f" $value }} '
                  'dispatch{{ if ne $value 1.0 }}es{{ end }} to agent '
                  f'"{{{{ $labels.agent_name }}}}"{where} that got no agent in the last {window}, '
                  f"cause {{{{ $labels.cause }}}}: {causes}{{{{ end }}}}. Those calls were "
                  "dropped.")


def _burn(pairs: tuple[tuple[float, str, str], ...], budget: float) -> str:
    branches = [f"(\n  {LOST_RATIO[long]} > {number(round(rate * budget, 12))}\n    and\n"
                f"  {LOST_RATIO[short]} > {number(round(rate * budget, 12))}\n)"
                for rate, long, short in pairs]
    return "\nor\n".join(branches)


def _pct(ratio: float) -> str:
    return f"{round(ratio * 100, 10):g}%"


def _fast_burn(s: _S, a: AlertConfig, config: RulesConfig) -> tuple[str, str]:
    budget = _budget(config)
    return _burn(FAST_BURN, budget), (
        f'{{{{ $value | humanizePercentage }}}} of the dispatches to agent '
        f'"{{{{ $labels.agent_name }}}}" got no agent over the last hour or six (objective '
        f"{_pct(1 - budget)}, error budget {_pct(budget)}): at this rate the 30-day budget is "
        f"gone within days.")


def _slow_burn(s: _S, a: AlertConfig, config: RulesConfig) -> tuple[str, str]:
    budget = _budget(config)
    return _burn(SLOW_BURN, budget), (
        f'{{{{ $value | humanizePercentage }}}} of the dispatches to agent '
        f'"{{{{ $labels.agent_name }}}}" got no agent over the last day or three (objective '
        f"{_pct(1 - budget)}, error budget {_pct(budget)}): the 30-day budget will not last "
        f"the month.")


def _stalled(s: _S, a: AlertConfig, config: RulesConfig) -> tuple[str, str]:
    window, beats = a.params["window"], s.raw("server_log_heartbeats")
    return (f"increase({beats}[{window}]) == 0\n  or\n{s.up()} == 0",
            "No heartbeat from the server-log filter reached Prometheus through mtail "
            f"{{{{ $labels.instance }}}} in {window} (or mtail cannot be scraped): lost "
            "dispatches are not being counted, so the server-log alerts cannot fire.")


ALERTS = {
    "dispatches_lost": ("Dispatches to an agent got no agent, as livekit-server logged them.",
                        _lost),
    "dispatch_slo_fast_burn": ("The dispatch-success error budget is burning fast.", _fast_burn),
    "dispatch_slo_slow_burn": ("The dispatch-success error budget is burning steadily.",
                               _slow_burn),
    "server_log_stalled": ("livekit-server's log is not being read into metrics.", _stalled),
}


# what each alert is about: an agent name, or the log pipeline's target (mtail)
SCOPES: dict[str, Scope] = {"dispatches_lost": "agent", "dispatch_slo_fast_burn": "agent",
                            "dispatch_slo_slow_burn": "agent", "server_log_stalled": "target"}
# the pack's ``concern`` label, for the Alertmanager example's inhibition: lost dispatches are
# about capacity (a firing page silences the capacity warnings of the same agent)
CONCERNS = {"dispatches_lost": "capacity", "dispatch_slo_fast_burn": "capacity",
            "dispatch_slo_slow_burn": "capacity", "server_log_stalled": "monitoring"}


def alerting_rules(config: RulesConfig) -> list[dict[str, Any]]:
    """The server-log alerts; none when ``server_log.enabled`` is false."""
    if not _enabled(config):
        return []
    s = _S(config)
    rules = []
    for key, (summary, build) in ALERTS.items():
        alert = config.alert(key)
        if not alert.enabled:
            continue
        expr, description = build(s, alert, config)
        annotations = {"summary": summary, "description": description,
                       "runbook_url": f"{config.runbook_base_url}#{alert.name.lower()}"}
        dashboard = _dashboard_url(config, SCOPES[key])
        if dashboard:
            annotations["dashboard_url"] = dashboard
        rule: dict[str, Any] = {"alert": alert.name, "expr": expr, "for": str(alert.for_)}
        if alert.keep_firing_for.seconds:
            rule["keep_firing_for"] = str(alert.keep_firing_for)
        rule["labels"] = {"severity": alert.severity, "concern": CONCERNS[key]}
        rule["annotations"] = annotations
        rules.append(rule)
    return rules


def rule_groups(config: RulesConfig) -> list[dict[str, Any]]:
    """The server-log groups alone, as they appear in the rule file (for tests and tools)."""
    groups = [(RECORDING_GROUP, recording_rules(config)), (ALERT_GROUP, alerting_rules(config))]
    return [{"name": name, "rules": rules} for name, rules in groups if rules]
