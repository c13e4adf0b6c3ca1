"""PromQL building blocks for the dashboard: every metric name comes from ``metrics``.

Every selector carries one matcher per dashboard variable (``cluster``, ``namespace``,
``job``, ``agent_name``, ``instance``) plus the user's extra matchers, so that the
dashboard-linter's job/instance rules hold and the variables filter every panel.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import metrics as m

# Dashboard variables that filter every selector, in the order they appear on top.
FILTER_VARIABLES = ("cluster", "namespace", "job", "agent_name", "instance")
# Fleet figures are grouped like the alert pack's recording rules (its default
# aggregation_labels, cluster and namespace, plus agent_name).
FLEET = "cluster, namespace, agent_name"
WORKER = "cluster, namespace, agent_name, instance"

RATE_INTERVAL = "$__rate_interval"
RANGE = "$__range"
TARGET_LOAD = "$target_load"

@dataclass(frozen=True)
class Selector:
    """The label matchers of every query: the variables plus ``extra`` matchers."""

    extra: tuple[str, ...] = ()

    @property
    def matchers(self) -> str:
        own = [f'{name}=~"${name}"' for name in FILTER_VARIABLES]
        return ", ".join([*own, *self.extra])

    def of(self, name: str) -> str:
        """``name{matchers}`` for a full series name."""
        return f"{name}{{{self.matchers}}}"

    def raw(self, short: str, suffix: str = "") -> str:
        """Selector of a catalogue metric (``suffix`` ``_bucket``/``_count``/``_sum``)."""
        spec = m.BY_SHORT[short]
        if suffix:
            if spec.kind != "histogram":
                raise ValueError(f"{short} is a {spec.kind}, it has no {suffix} series")
            return self.of(spec.name + suffix)
        return self.of(spec.series_name)

    def variable_source(self, short: str, up_to: str) -> str:
        """Series a variable reads its values from: filtered by the variables before it."""
        before = FILTER_VARIABLES[:FILTER_VARIABLES.index(up_to)] if up_to in FILTER_VARIABLES else ()
        parts = [f'{name}=~"${name}"' for name in before] + list(self.extra)
        series = m.series(short)
        return f"{series}{{{', '.join(parts)}}}" if parts else series

    # --- small expression helpers -------------------------------------------------

    def rate(self, short: str, suffix: str = "", window: str = RATE_INTERVAL) -> str:
        spec = m.BY_SHORT[short]
        if spec.kind not in ("counter", "histogram"):
            raise ValueError(f"rate() of the {spec.kind} {short}")
        return f"rate({self.raw(short, suffix)}[{window}])"

    def increase(self, short: str, window: str = RANGE) -> str:
        if m.BY_SHORT[short].kind != "counter":
            raise ValueError(f"increase() of the non-counter {short}")
        return f"increase({self.raw(short)}[{window}])"

    def sum_rate(self, short: str, by: str = FLEET) -> str:
        return f"sum by ({by}) ({self.rate(short)})"

    def quantile(self, q: float, short: str, by: str = FLEET) -> str:
        if m.BY_SHORT[short].kind != "histogram":
            raise ValueError(f"histogram_quantile() of the non-histogram {short}")
        return (f"histogram_quantile({q}, sum by ({by}, le) "
                f"({self.rate(short, '_bucket')}))")

    def alerts(self, series: str = "ALERTS", state: str = "") -> str:
        """The alert pack's alerts; agent alerts keep ``cluster``, ``namespace`` and
        ``agent_name`` only."""
        parts = ['alertname=~"LiveKitAgents.*"']
        if state:
            parts.append(f'alertstate="{state}"')
        parts += ['cluster=~"$cluster"', 'namespace=~"$namespace"',
                  'agent_name=~"$agent_name"', *self.extra]
        return f"{series}{{{', '.join(parts)}}}"


class Capacity:
    """Per-worker capacity expressions, the same definitions as the alert pack.

    A worker can take a job when it is registered, its last status was not WS_FULL,
    it is not draining, the load it reports is below the server's ``target_load`` and its
    effective load is below its own ``load_threshold``.
    """

    def __init__(self, sel: Selector) -> None:
        self.sel = sel
        r = sel.raw
        self.registered = r("worker_registered")
        self.full = r("worker_full")
        self.draining = r("worker_draining")
        self.load = r("worker_load_ratio")
        self.effective = r("worker_effective_load_ratio")
        self.threshold = r("worker_load_threshold_ratio")

    @property
    def available(self) -> str:
        """1 for a worker the server can place a job on, else 0 (an effective load the
        exporter cannot read, NaN, is unknown: the status decides, as in the alert pack)."""
        return (f"({self.registered} == bool 1)\n"
                f"  * ({self.full} == bool 0)\n"
                f"  * ({self.draining} == bool 0)\n"
                f"  * ({self.load} < bool {TARGET_LOAD})\n"
                f"  * clamp_max(({self.effective} < bool {self.threshold})"
                f" + ({self.effective} != bool {self.effective}), 1)")

    @property
    def full_registered(self) -> str:
        """1 for a registered worker whose last status was WS_FULL (full or draining)."""
        return f"{self.full} * {self.registered}"

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
        return (f"(({self.registered} == 1 unless {self.draining} == 1) * 0 + {TARGET_LOAD})")

    @property
    def target_headroom(self) -> str:
        """max(0, target_load - reported load) for WS_AVAILABLE workers: the server's bid."""
        cap = self.target_capacity
        return (f"(((({TARGET_LOAD} - {self.load}) > 0) and {self.registered} == 1 "
                f"unless {self.full} == 1)\n  or {cap} * 0)")

    def headroom_ratio(self, against: str, by: str | None) -> str:
        head, cap = ((self.threshold_headroom, self.threshold_capacity) if against == "threshold"
                     else (self.target_headroom, self.target_capacity))
        group = f" by ({by})" if by else ""
        return f"sum{group} (\n{head}\n)\n/\n(sum{group} (\n{cap}\n) > 0)"
