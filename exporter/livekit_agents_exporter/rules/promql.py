"""PromQL building blocks shared by the recording and alerting rules.

Raw series names come from the metric catalogue only (``metrics.series``), and every
raw selector gets the configured matchers, so a renamed metric or another ``job``
label is one edit.
"""

from __future__ import annotations

from .. import metrics as m
from .config import RulesConfig

# The rate window is part of the recorded names (``...:rate5m``): changing it renames them.
RATE_WINDOW = "5m"
RATE_WINDOW_SECONDS = 300

# Refusal reasons, as the alerts read them: a worker refusing for lack of capacity, a request
# handler that failed to answer, and routing (on_request rejected the job on purpose).
CAPACITY_REASONS = ("full", "draining")
HANDLER_FAILURE_REASONS = ("unanswered", "error")
ROUTING_REASONS = ("on_request",)
assert {*CAPACITY_REASONS, *HANDLER_FAILURE_REASONS, *ROUTING_REASONS} == set(m.REJECT_REASONS)


def record_name(level: str, metric: str, operations: str) -> str:
    """``level:metric:operations``; ``metric`` gets the catalogue's prefix."""
    return f"{level}:{m.PREFIX}{metric}:{operations}"


def number(value: float) -> str:
    """A finite float as PromQL reads it back exactly (``0.7``, ``3600``)."""
    return repr(float(value)).removesuffix(".0")


class Q:
    """Selectors and groupings for one configuration."""

    def __init__(self, config: RulesConfig) -> None:
        self.config = config
        self.agent_labels = (*config.aggregation_labels, m.AGENT_LABEL)
        self.worker_labels = (*config.aggregation_labels, *config.worker_labels,
                              m.AGENT_LABEL)

    def _select(self, name: str) -> str:
        return f"{name}{{{self.config.selector}}}" if self.config.selector else name

    def raw(self, short: str, suffix: str = "") -> str:
        """Selector of a catalogue metric (``suffix``: ``_bucket`` etc. of a histogram)
        with the configured matchers injected."""
        return self._select(m.series(short) + suffix)

    def where(self, short: str, matcher: str, suffix: str = "") -> str:
        """``raw`` with one more matcher, e.g. ``reason=~"full|draining"``."""
        name = m.series(short) + suffix
        matchers = ", ".join(filter(None, (self.config.selector, matcher)))
        return f"{name}{{{matchers}}}"

    def up(self) -> str:
        return self._select("up")

    def by(self, *extra: str) -> str:
        """``by (cluster, agent_name, ...)``: the per-agent grouping plus ``extra``."""
        return f"by ({', '.join((*self.agent_labels, *extra))})"

    def worker_by(self, *extra: str) -> str:
        """``by (cluster, namespace, instance, agent_name, ...)``: one worker process."""
        return f"by ({', '.join((*self.worker_labels, *extra))})"

    def dedup(self, expr: str, *extra: str) -> str:
        """One series per worker process: the same worker read by two scrape configs or
        two Prometheus replicas (series that differ only in other labels) counts once."""
        return f"max {self.worker_by(*extra)} ({expr})"

    def reasons(self, reasons: tuple[str, ...]) -> str:
        """A regex matching these refusal reasons, for ``reason=~"..."``."""
        return "|".join(reasons)

    def target_load(self) -> str:
        return number(self.config.server_target_load)
