"""The dashboard's selectors and groupings; the formulas are the mixin's (``..promql``).

Every selector carries one matcher per dashboard variable (``cluster``, ``namespace``,
``job``, ``agent_name``, ``instance``) plus the mixin's selector (``extra``; the server
log's own selector for the server-log series), so that the dashboard-linter's
job/instance rules hold and the variables filter every panel. Fleet figures are grouped
like the recording rules: by the configured aggregation labels and ``agent_name``, after
the rules' reduction to one series per worker process (``promql.dedup``/``fleet_sum``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import metrics
from ..promql import Worker, dedup, fleet_sum, worker_grouping

# Dashboard variables that filter every selector, in the order they appear on top.
FILTER_VARIABLES = ("cluster", "namespace", "job", "agent_name", "instance")

RATE_INTERVAL = "$__rate_interval"
RANGE = "$__range"
TARGET_LOAD = "$target_load"


def _label(matcher: str) -> str:
    """The label name of a normalised matcher (``env="prod"`` -> ``env``)."""
    return re.split(r"[=!]", matcher, maxsplit=1)[0]


@dataclass(frozen=True)
class Selector:
    """The label matchers and groupings of every query."""

    extra: tuple[str, ...] = ()  # the mixin's selector, on every worker series
    server_log_extra: tuple[str, ...] = ()  # the server log's selector, on its series
    aggregation_labels: tuple[str, ...] = ("cluster", "namespace")
    worker_labels: tuple[str, ...] = ("instance",)

    @property
    def fleet(self) -> str:
        """``cluster, namespace, agent_name``: one agent's fleet, as the rules group it."""
        return ", ".join((*self.aggregation_labels, metrics.AGENT_LABEL))

    @property
    def worker(self) -> str:
        """``cluster, namespace, agent_name, instance``: one worker process."""
        return ", ".join((*self.aggregation_labels, metrics.AGENT_LABEL, *self.worker_labels))

    @property
    def fleet_legend(self) -> str:
        return " ".join(f"{{{{{label}}}}}" for label in (*self.aggregation_labels,
                                                         metrics.AGENT_LABEL))

    @property
    def worker_legend(self) -> str:
        return " ".join(f"{{{{{label}}}}}" for label in (metrics.AGENT_LABEL, *self.worker_labels))

    @property
    def _worker_grouping(self) -> tuple[str, ...]:
        return worker_grouping(self.aggregation_labels, self.worker_labels)

    def one_per_worker(self, expr: str, *extra: str) -> str:
        """The rules' per-worker deduplication (``promql.dedup``, by the worker's labels
        and ``extra``): a worker read by two scrape configs or two Prometheus replicas is
        one series on the dashboard too."""
        return dedup(expr, (*self._worker_grouping, *extra))

    def fleet_sum(self, expr: str, *extra: str, per: str = "agent") -> str:
        """``promql.fleet_sum``: one series per worker (and ``extra``), then summed per
        agent (``per="agent"``, the rules' grouping), per worker (``"worker"``) or over
        every selected worker (``"all"``)."""
        by = {"agent": (*self.aggregation_labels, metrics.AGENT_LABEL),
              "worker": self._worker_grouping, "all": None}[per]
        return fleet_sum(expr, by, self._worker_grouping, *extra)

    def capacity(self) -> Worker:
        """The mixin's per-worker formulas over these selectors and ``$target_load``."""
        return Worker(self.raw, TARGET_LOAD)

    def _extra_for(self, name: str) -> tuple[str, ...]:
        spec = next((s for s in metrics.SERVER_LOG_CATALOGUE if name.startswith(s.name)), None)
        return self.server_log_extra if spec is not None else self.extra

    def of(self, name: str) -> str:
        """``name{matchers}`` for a full series name."""
        own = [f'{label}=~"${label}"' for label in FILTER_VARIABLES]
        return f"{name}{{{', '.join([*own, *self._extra_for(name)])}}}"

    def raw(self, short: str, suffix: str = "") -> str:
        """Selector of a catalogue metric (``suffix`` ``_bucket``/``_count``/``_sum``)."""
        spec = metrics.BY_SHORT[short]
        if suffix:
            if spec.kind != "histogram":
                raise ValueError(f"{short} is a {spec.kind}, it has no {suffix} series")
            return self.of(spec.name + suffix)
        return self.of(spec.series_name)

    def variable_source(self, short: str, up_to: str) -> str:
        """Series a variable reads its values from: filtered by the variables before it."""
        before = (FILTER_VARIABLES[:FILTER_VARIABLES.index(up_to)]
                  if up_to in FILTER_VARIABLES else ())
        series = metrics.series(short)
        parts = [f'{name}=~"${name}"' for name in before] + list(self._extra_for(series))
        return f"{series}{{{', '.join(parts)}}}" if parts else series

    # --- small expression helpers -------------------------------------------------

    def rate(self, short: str, suffix: str = "", window: str = RATE_INTERVAL) -> str:
        spec = metrics.BY_SHORT[short]
        if spec.kind not in ("counter", "histogram"):
            raise ValueError(f"rate() of the {spec.kind} {short}")
        return f"rate({self.raw(short, suffix)}[{window}])"

    def increase(self, short: str, window: str = RANGE) -> str:
        if metrics.BY_SHORT[short].kind != "counter":
            raise ValueError(f"increase() of the non-counter {short}")
        return f"increase({self.raw(short)}[{window}])"

    def sum_rate(self, short: str, *extra: str, per: str = "agent") -> str:
        """A counter's rate summed like the recording rules: one series per worker (and
        ``extra``) first, so a worker scraped twice counts once. The server log's series
        come from mtail's targets, not workers, and are summed as its rules sum them."""
        if metrics.BY_SHORT[short].source == "server_log":
            labels = ", ".join((*self.aggregation_labels, metrics.AGENT_LABEL, *extra))
            return f"sum by ({labels}) ({self.rate(short)})"
        return self.fleet_sum(self.rate(short), *extra, per=per)

    def sum_increase(self, short: str, window: str = RANGE) -> str:
        """A counter's increase over every selected worker, each worker counted once."""
        if metrics.BY_SHORT[short].source == "server_log":
            return f"sum({self.increase(short, window)})"
        return self.fleet_sum(self.increase(short, window), per="all")

    def quantile(self, q: float, short: str) -> str:
        """A percentile per agent: the bucket rates deduplicated per worker and ``le``,
        then summed per agent and ``le``, as the recording rules do."""
        if metrics.BY_SHORT[short].kind != "histogram":
            raise ValueError(f"histogram_quantile() of the non-histogram {short}")
        return f"histogram_quantile({q}, {self.fleet_sum(self.rate(short, '_bucket'), 'le')})"

    def alerts(self, series: str = "ALERTS", state: str = "") -> str:
        """The alert pack's alerts. Agent alerts keep the aggregation labels and
        ``agent_name`` only, so of the mixin's matchers only those on aggregation labels
        apply (the pack's own selector already chose the workers)."""
        parts = ['alertname=~"LiveKitAgents.*"']
        if state:
            parts.append(f'alertstate="{state}"')
        kept = [mt for mt in self.extra if _label(mt) in self.aggregation_labels]
        parts += ['cluster=~"$cluster"', 'namespace=~"$namespace"',
                  'agent_name=~"$agent_name"', *kept]
        return f"{series}{{{', '.join(parts)}}}"
