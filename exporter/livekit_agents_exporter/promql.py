"""The mixin's PromQL: every formula the recording rules, the alerts and the dashboard
share is written here once.

``Worker`` holds the per-worker capacity formulas over any way of selecting a raw series
(the rules' configured matchers, or the dashboard's variables plus those matchers) and
any target load (a number in the rules, ``$target_load`` on the dashboard). ``dedup`` and
``fleet_sum`` reduce to one series per worker process before a sum, for both. ``Q`` is the
rules' side: selectors, groupings and per-worker deduplication for one configuration.
Raw series names come from the metric catalogue only (``metrics.series``), so a renamed
metric or another ``job`` label is one edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import metrics

if TYPE_CHECKING:  # the rules' configuration; the dashboard needs only ``Worker``
    from .rules.config import RulesConfig

# The rate window is part of the recorded names (``...:rate5m``): changing it renames them.
RATE_WINDOW = "5m"
RATE_WINDOW_SECONDS = 300

# Refusal reasons, as the alerts read them: a worker refusing for lack of capacity, a request
# handler that failed to answer, and routing (on_request rejected the job on purpose).
CAPACITY_REASONS = ("full", "draining")
HANDLER_FAILURE_REASONS = ("unanswered", "error")
ROUTING_REASONS = ("on_request",)
assert ({*CAPACITY_REASONS, *HANDLER_FAILURE_REASONS, *ROUTING_REASONS}
        == set(metrics.REJECT_REASONS))


def worker_grouping(aggregation_labels: tuple[str, ...],
                    worker_labels: tuple[str, ...]) -> tuple[str, ...]:
    """The labels of one worker process: aggregation labels, worker labels, agent name."""
    return (*aggregation_labels, *worker_labels, metrics.AGENT_LABEL)


def dedup(expr: str, grouping: tuple[str, ...]) -> str:
    """One series per worker process: the same worker read by two scrape configs or two
    Prometheus replicas (series that differ only in other labels) counts once."""
    return f"max by ({', '.join(grouping)}) ({expr})"


def fleet_sum(expr: str, by: tuple[str, ...] | None, worker: tuple[str, ...],
              *extra: str) -> str:
    """``sum by (by, extra)`` of one series per worker process (``dedup`` by ``worker``
    and ``extra``), all workers together when ``by`` is None: a counter's rate or a
    histogram's bucket rates (``extra`` = ``le``) read by two scrape configs or two
    Prometheus replicas are summed once."""
    labels, one = (*(by or ()), *extra), dedup(expr, (*worker, *extra))
    return f"sum by ({', '.join(labels)}) ({one})" if labels else f"sum({one})"


def record_name(level: str, metric: str, operations: str) -> str:
    """``level:metric:operations``; ``metric`` gets the catalogue's prefix."""
    return f"{level}:{metrics.PREFIX}{metric}:{operations}"


def number(value: float) -> str:
    """A finite float as PromQL reads it back exactly (``0.7``, ``3600``)."""
    return repr(float(value)).removesuffix(".0")


class Q:
    """Selectors and groupings for one configuration."""

    def __init__(self, config: RulesConfig) -> None:
        self.config = config
        self.agent_labels = (*config.aggregation_labels, metrics.AGENT_LABEL)
        self.worker_labels = worker_grouping(config.aggregation_labels, config.worker_labels)

    def _select(self, name: str) -> str:
        return f"{name}{{{self.config.selector}}}" if self.config.selector else name

    def raw(self, short: str, suffix: str = "") -> str:
        """Selector of a catalogue metric (``suffix``: ``_bucket`` etc. of a histogram)
        with the configured matchers injected."""
        return self._select(metrics.series(short) + suffix)

    def where(self, short: str, matcher: str, suffix: str = "") -> str:
        """``raw`` with one more matcher, e.g. ``reason=~"full|draining"``."""
        name = metrics.series(short) + suffix
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

    def fleet_sum(self, expr: str, *extra: str) -> str:
        """``fleet_sum`` per agent: ``sum by (cluster, agent_name, extra)`` of ``dedup``."""
        return fleet_sum(expr, self.agent_labels, self.worker_labels, *extra)

    def dedup(self, expr: str, *extra: str) -> str:
        """``dedup`` by one worker process's labels plus ``extra``."""
        return dedup(expr, (*self.worker_labels, *extra))

    def reasons(self, reasons: tuple[str, ...]) -> str:
        """A regex matching these refusal reasons, for ``reason=~"..."``."""
        return "|".join(reasons)

    def target_load(self) -> str:
        return number(self.config.server_target_load)

    def worker(self) -> Worker:
        """The per-worker formulas over this configuration's selectors."""
        return Worker(self.raw, self.target_load())


@dataclass(frozen=True)
class Worker:
    """Per-worker capacity, as the LiveKit server and the SDK decide it.

    A worker can take a job when it is registered, its last status was not WS_FULL, it is
    not draining, the load it reports is below the server's ``target_load`` and its
    effective load is below its own ``load_threshold``. An effective load the exporter
    could not read (NaN) is unknown, not full: the status decides.
    """

    raw: Callable[[str], str]  # catalogue short name -> selector
    target_load: str  # PromQL text: a number, or a dashboard variable

    @property
    def registered(self) -> str:
        return self.raw("worker_registered")

    @property
    def full(self) -> str:
        return self.raw("worker_full")

    @property
    def draining(self) -> str:
        return self.raw("worker_draining")

    @property
    def load(self) -> str:
        return self.raw("worker_load_ratio")

    @property
    def effective(self) -> str:
        return self.raw("worker_effective_load_ratio")

    @property
    def threshold(self) -> str:
        return self.raw("worker_load_threshold_ratio")

    @property
    def available(self) -> str:
        """1 for a worker the server can place a job on, else 0. A NaN load (no sample
        yet) compares false: not available."""
        return (f"({self.registered} == bool 1)\n"
                f"  * ({self.full} == bool 0)\n"
                f"  * ({self.draining} == bool 0)\n"
                f"  * ({self.load} < bool {self.target_load})\n"
                f"  * clamp_max(({self.effective} < bool {self.threshold})"
                f" + ({self.effective} != bool {self.effective}), 1)")

    @property
    def effective_unknown(self) -> str:
        return f"{self.effective} != bool {self.effective}"

    @property
    def full_registered(self) -> str:
        """1 for a registered worker whose last status was WS_FULL (full or draining); the
        status of a worker that is not registered is stale."""
        return f"{self.full} * {self.registered}"

    @property
    def capacity(self) -> str:
        """min(load_threshold, target_load) of the workers that count: registered, not
        draining, effective load known. ``>= 0`` drops a NaN threshold (failed read);
        +Inf (dev mode) clamps. The recording rules' capacity."""
        return (f"clamp_max({self.threshold} >= 0, {self.target_load})\n"
                f"  and ({self.registered} == 1)\n"
                f"  and ({self.effective} == {self.effective})\n"
                f"  unless ({self.draining} == 1)")

    @property
    def threshold_capacity(self) -> str:
        """load_threshold of the workers that count (+Inf, dev mode, clamps to 1)."""
        return (f"(clamp_max({self.threshold} >= 0, 1)\n"
                f"  and {self.registered} == 1\n"
                f"  unless {self.draining} == 1)")

    @property
    def threshold_headroom(self) -> str:
        """max(0, threshold - effective load) for workers not reporting full."""
        cap = self.threshold_capacity
        return (f"((({cap} - {self.effective}) > 0 unless {self.full} == 1)\n"
                f"  or {cap} * 0)")

    @property
    def target_capacity(self) -> str:
        """The server's target_load once per worker that counts."""
        return (f"(({self.registered} == 1 unless {self.draining} == 1) * 0 + "
                f"{self.target_load})")

    @property
    def target_headroom(self) -> str:
        """max(0, target_load - reported load) for WS_AVAILABLE workers: the server's bid."""
        cap = self.target_capacity
        return (f"(((({self.target_load} - {self.load}) > 0) and {self.registered} == 1 "
                f"unless {self.full} == 1)\n  or {cap} * 0)")

    def headroom_ratio(self, against: str, by: str | None,
                       one_per_worker: Callable[[str], str] = str) -> str:
        """Headroom over capacity, ``against`` the workers' ``threshold`` or the server's
        ``target`` load, summed ``by`` these labels (all workers when None), each worker's
        figure reduced by ``one_per_worker`` first (``dedup``)."""
        head, cap = ((self.threshold_headroom, self.threshold_capacity) if against == "threshold"
                     else (self.target_headroom, self.target_capacity))
        head, cap = one_per_worker(f"\n{head}\n"), one_per_worker(f"\n{cap}\n")
        group = f" by ({by})" if by else ""
        return f"sum{group} (\n{head}\n)\n/\n(sum{group} (\n{cap}\n) > 0)"
