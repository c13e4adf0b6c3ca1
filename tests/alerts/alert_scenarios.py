"""promtool unit tests computed from a rules configuration.

Every alert gets a scenario: a fleet that is healthy, then breaks at a known
evaluation, then recovers. The test asserts that the alert is absent one evaluation
before ``onset + for``, fires at exactly ``onset + for`` with the expected labels and
annotations, still fires one evaluation before the recovery is visible, and is gone
at that evaluation. Onsets and recoveries are derived from the configuration (``for:``,
windows, thresholds), so the tests follow the defaults when they change.

Series are built from the metric catalogue; worker labels are the target labels
Prometheus would add (job/instance/cluster/namespace) plus ``agent_name``. Values are
one sample per minute; evaluations are once a minute.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from livekit_agents_exporter import metrics as m
from livekit_agents_exporter.rules import RulesConfig
from livekit_agents_exporter.rules import recording as rec
from livekit_agents_exporter.rules.alerting import DEFINITIONS
from livekit_agents_exporter.rules.config import Duration

STEP = 60  # seconds between samples and between evaluations
RATE_MIN = 5  # the recorded rates' window, in minutes
STALE = "stale"

Value = float | str | None  # a number, STALE, or None (no sample)
Gauge = float | Callable[[int], Value]


def minutes(duration: Duration) -> int:
    """Evaluations it takes to cover a duration (``for: 90s`` fires after 2 steps)."""
    return math.ceil(duration.seconds / STEP)


def fmt(value: Value) -> str:
    if value is None:
        return "_"
    if value == STALE:
        return STALE
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number).removesuffix(".0")


def selector_labels(config: RulesConfig) -> dict[str, str]:
    """Labels a series needs to match the configured selector (equality matchers only)."""
    labels = {}
    for matcher in filter(None, (p.strip() for p in config.selector.split(","))):
        name, _, value = matcher.partition("=")
        assert not name.endswith(("!", "~")) and not value.startswith("~"), \
            f"scenarios need an equality-only selector, got {config.selector!r}"
        labels[name.strip()] = value.strip().strip('"')
    return labels


def series_text(name: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


# --- a worker's series ------------------------------------------------------------------


@dataclass
class Worker:
    """One worker process as Prometheus scrapes it: gauges and counters per minute.

    Gauges are constants or functions of the minute; counters are increments per
    minute (the value at minute ``t`` is the sum of increments over ``1..t``).
    ``present(t)`` false means the target is gone (stale marker, then no samples).
    """

    instance: str
    agent: str = "support"
    cluster: str = "eu"
    namespace: str = "voice"
    job_labels: dict[str, str] = field(default_factory=dict)
    gauges: dict[str, Gauge] = field(default_factory=dict)
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], Callable[[int], float]] = \
        field(default_factory=dict)
    present: Callable[[int], bool] = lambda t: True
    up: Callable[[int], float] | None = None
    labelled: dict[tuple[str, tuple[tuple[str, str], ...]], Gauge] = field(default_factory=dict)

    HEALTHY = {
        "worker_registered": 1, "worker_full": 0, "worker_draining": 0,
        "worker_load_ratio": 0.25, "worker_effective_load_ratio": 0.25,
        "worker_load_threshold_ratio": 0.7, "worker_active_jobs": 2,
        "worker_pending_assignments": 0,
    }

    @property
    def target_labels(self) -> dict[str, str]:
        # the selector's labels win: they are what the scrape job sets
        return {"instance": self.instance, "cluster": self.cluster, "namespace": self.namespace,
                **self.job_labels}

    @property
    def labels(self) -> dict[str, str]:
        return {**self.target_labels, m.AGENT_LABEL: self.agent}

    def gauge(self, short: str, value: Gauge) -> Worker:
        self.gauges[short] = value
        return self

    def labelled_gauge(self, short: str, value: Gauge, **labels: str) -> Worker:
        self.labelled[(short, tuple(sorted(labels.items())))] = value
        return self

    def counter(self, short: str, per_minute: float | Callable[[int], float],
                suffix: str = "", **labels: str) -> Worker:
        """A counter (or a histogram's ``_count`` with ``suffix``) growing per minute."""
        inc = per_minute if callable(per_minute) else (lambda t, v=per_minute: v)
        self.counters[(m.series(short) + suffix, tuple(sorted(labels.items())))] = inc
        return self

    def _values(self, fn: Callable[[int], Value], length: int) -> str:
        out: list[Value] = []
        for t in range(length):
            if self.present(t):
                out.append(fn(t))
            else:
                out.append(STALE if t > 0 and self.present(t - 1) else None)
        return " ".join(fmt(v) for v in out)

    def series(self, length: int) -> list[dict[str, str]]:
        result = []
        gauges = {**self.HEALTHY, **self.gauges}
        for short, value in gauges.items():
            fn = value if callable(value) else (lambda t, v=value: v)
            result.append({"series": series_text(m.series(short), self.labels),
                           "values": self._values(fn, length)})
        for (short, extra), value in self.labelled.items():
            fn = value if callable(value) else (lambda t, v=value: v)
            result.append({"series": series_text(m.series(short),
                                                 {**self.labels, **dict(extra)}),
                           "values": self._values(fn, length)})
        for (name, extra), inc in self.counters.items():
            totals, total = [], 0.0
            for t in range(length):
                total += inc(t) if t > 0 else 0.0
                totals.append(total)
            result.append({"series": series_text(name, {**self.labels, **dict(extra)}),
                           "values": self._values(lambda t, v=totals: v[t], length)})
        # a scrape that fails still writes up=0; a target that is gone writes nothing
        up_values = (" ".join(fmt(self.up(t)) for t in range(length)) if self.up
                     else self._values(lambda t: 1, length))
        result.append({"series": series_text("up", self.target_labels), "values": up_values})
        return result


def switch(before: Value, after: Value, at: int,
           until: int | None = None) -> Callable[[int], Value]:
    """``after`` from minute ``at`` (until ``until``, exclusive), else ``before``."""
    return lambda t: after if at <= t and (until is None or t < until) else before


def increments_in_window(t: int, start: int, stop: int, window: int) -> int:
    """How many ``every_minute(.., start, stop)`` increments ``increase(..[window])`` sees
    at minute ``t``: those of the minutes ``max(t - window, start) + 1 .. min(t, stop)``."""
    return max(0, min(t, stop) - max(t - window, start))


def every_minute(amount: float, start: int, stop: int | None = None) -> Callable[[int], float]:
    """Counter increments of ``amount`` for the minutes ending in ``start+1 .. stop``."""
    return lambda t: amount if start < t and (stop is None or t <= stop) else 0.0


# --- expected wording ---------------------------------------------------------------------


def where(config: RulesConfig, labels: dict[str, str]) -> str:
    return "".join(f" in {label} {labels[label]}" for label in config.aggregation_labels
                   if labels.get(label))


def agent_phrase(config: RulesConfig, w: Worker) -> str:
    name = f'agent "{w.agent}"' if w.agent else \
        'the automatically dispatched agent (agent_name "")'
    return f"{name}{where(config, w.labels)}"


def plural(n: float, noun: str) -> str:
    return f"{n:.0f} {noun}{'' if n == 1 else 's'}"


def worker_phrase(config: RulesConfig, w: Worker) -> str:
    return f"worker {w.instance} of {agent_phrase(config, w)}"


def go_number(value: float) -> str:
    """``{{ $value }}`` as Go prints a float64."""
    return fmt(value)


def humanize_percentage(value: float) -> str:
    return f"{value * 100:.4g}%"


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- scenarios ----------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    alert: str  # config key
    workers: list[Worker]
    onset: int  # first evaluation where the condition holds
    recovered: int  # first evaluation where it no longer holds
    labels: dict[str, str]  # the alert's labels besides alertname, severity and concern
    description: str | Callable[[int], str]  # as rendered at evaluation minute t
    # more (minute, firing) checks besides the four at the boundaries
    extra_checks: list[tuple[int, bool]] = field(default_factory=list)

    def description_at(self, t: int) -> str:
        return self.description(t) if callable(self.description) else self.description


def _agent_labels(config: RulesConfig, w: Worker) -> dict[str, str]:
    return {**{k: w.labels[k] for k in config.aggregation_labels if k in w.labels},
            m.AGENT_LABEL: w.agent}


def scenarios(config: RulesConfig) -> list[Scenario]:
    """At least one scenario per enabled alert."""
    assert "cluster" in config.aggregation_labels, "scenarios check per-cluster aggregation"
    sel = selector_labels(config)
    tl = config.server_target_load
    a = config.alerts

    def worker(instance: str, **kwargs: Any) -> Worker:
        w = Worker(instance, job_labels=dict(sel), **kwargs)
        return w.gauge("worker_load_threshold_ratio", tl)  # healthy: threshold == target_load

    def bystander() -> Worker:
        """The same agent name in another cluster, healthy throughout."""
        return worker("10.1.0.9:10781", cluster="us")

    def fire_window(key: str, onset: int, lag: int = 0) -> tuple[int, int, int]:
        """(fire, stop, recovered): the condition stops ``5`` evaluations after firing,
        and is seen to end ``lag`` evaluations after it stops."""
        fire = onset + minutes(a[key].for_)
        stop = fire + 5
        return fire, stop, stop + lag

    out: list[Scenario] = []
    k = 10  # the fleet breaks at this minute

    # NoCapacity: both workers of the agent in eu turn full; us keeps room. One scrape
    # fails while it fires (the series go stale for one evaluation): it keeps firing.
    nc = a["no_capacity"]
    nc_window = minutes(nc.params["window"])
    fire, stop, recovered = fire_window("no_capacity", k)
    gap = fire + 2
    w1, w2 = worker("10.0.0.1:10781"), worker("10.0.0.2:10781")
    for w in (w1, w2):
        w.gauge("worker_full", switch(0, 1, k, stop if w is w1 else None))
        w.gauge("worker_load_ratio", switch(0.25, 0.9, k, stop if w is w1 else None))
        w.gauge("worker_effective_load_ratio", switch(0.25, 0.9, k, stop if w is w1 else None))
        w.present = lambda t: t != gap
        w.up = lambda t: 0 if t == gap else 1

    def no_capacity_text(w: Worker, workers: int, available: int, refused: float,
                         refusing: int, all_full: float) -> str:
        return (f"Callers of {agent_phrase(config, w)} are being lost for lack of capacity: "
                f"of its {plural(workers, 'worker')}, {available} can take a job now; in the "
                f"last {nc.params['window']} they refused {refused:.0f} job offers as full or "
                f"draining ({refusing} of them refused at least one) and were all full at once "
                f"for at least {all_full:.0f}s. The LiveKit server drops a dispatch no worker "
                f"takes (\"no worker available\").")

    out.append(Scenario(
        "no capacity in one cluster, one failed scrape", "no_capacity", [w1, w2, bystander()],
        k, recovered, _agent_labels(config, w1), no_capacity_text(w1, 2, 0, 0, 0, 0),
        extra_checks=[(gap, True), (gap + 1, True)]))

    # NoCapacity, 1.8 class, bursty losses: three workers refuse offers as full every
    # minute, and the whole fleet is full at one evaluation in three (the burst that lost
    # the calls); a different one is free at the two others. The refusals while the fleet
    # was seen full at once page within for: of the first such evaluation, although the
    # "none available now" branch alone never holds for two evaluations in a row.
    stop = k + 7  # the last burst is at k + 6
    recovered = stop + nc_window  # until the window no longer holds the last burst (k + 6)
    burst = [worker(f"10.0.0.{i + 1}:10781") for i in range(3)]

    def burst_full(t: int, i: int, stop: int = stop) -> int:
        return 1 if k <= t < stop and ((t - k) % 3 == 0 or t % 3 != i) else 0

    for i, w in enumerate(burst):
        full_at = functools.partial(burst_full, i=i)
        w.gauge("worker_full", full_at)
        w.gauge("worker_effective_load_ratio", lambda t, f=full_at: 0.75 if f(t) else 0.5)
        w.gauge("worker_load_ratio", lambda t, f=full_at: 0.6 if f(t) else 0.5)
        w.counter("job_requests_rejected", every_minute(1, k, stop), reason="full")
        w.counter("worker_full_seconds", every_minute(40, k, stop))

    def burst_available(t: int, stop: int = stop) -> int:
        return 3 if t >= stop else sum(1 for i in range(3) if not burst_full(t, i))

    out.append(Scenario(
        "bursty losses: every worker refuses as full, all full at one evaluation in three",
        "no_capacity", [*burst, bystander()], k, recovered, _agent_labels(config, burst[0]),
        lambda t, stop=stop: no_capacity_text(
            burst[0], 3, burst_available(t), 3 * increments_in_window(t, k, stop, nc_window),
            3, 0)))

    # NoCapacity, bursts of losses as far apart as one page bridges: the whole fleet full
    # and every worker refusing an offer as full for one minute, then free for G - 1. At
    # one-minute samples the condition holds from a burst to window - 1 minutes after it,
    # keep_firing_for holds the page from the first evaluation without it, and the next
    # burst arrives at the last evaluation it still does: G = window + keep_firing_for is
    # the widest gap (one more minute and the page resolves; the runbook's bound for 15 s
    # intervals, window + keep_firing_for - 2 x 30 s, is narrower).
    period = nc_window + minutes(nc.keep_firing_for)
    bursts_at = (k, k + period, k + 2 * period)
    recovered = bursts_at[-1] + nc_window
    spaced = [worker(f"10.0.0.{i + 1}:10781") for i in range(3)]
    for w in spaced:
        w.gauge("worker_full", lambda t: 1 if t in bursts_at else 0)
        w.gauge("worker_effective_load_ratio", lambda t: 0.75 if t in bursts_at else 0.5)
        w.gauge("worker_load_ratio", lambda t: 0.6 if t in bursts_at else 0.5)
        w.counter("job_requests_rejected", lambda t: 1 if t in bursts_at else 0, reason="full")
        w.counter("worker_full_seconds", lambda t: 20 if t in bursts_at else 0)

    def spaced_text(t: int) -> str:
        """The annotations of the last evaluation whose condition held (keep_firing_for
        keeps those while it holds the page)."""
        held = max(h for h in range(k, t + 1)
                   if any(b <= h < b + nc_window for b in bursts_at))
        refused = sum(1 for b in bursts_at if held - nc_window < b <= held)
        return no_capacity_text(spaced[0], 3, 0 if held in bursts_at else 3, 3 * refused, 3, 0)

    fire = k + minutes(nc.for_)
    out.append(Scenario(
        f"bursts of losses {period} minutes apart: one page", "no_capacity",
        [*spaced, bystander()], k, recovered, _agent_labels(config, spaced[0]), spaced_text,
        extra_checks=[(t, True) for t in range(fire, recovered + minutes(nc.keep_firing_for))]))

    # NoCapacity, 1.2 class: two workers that never refuse, full 57 s of every minute but
    # available whenever Prometheus looks: all full at once most of the window
    secs = nc.params["window"].seconds

    def all_full(t: int, stop: int) -> float:
        """sum(rate(full_seconds)) - count + 1, as the rule computes it."""
        r = 57 * increments_in_window(t, k, stop, nc_window) / secs
        return max(0.0, (r + r - 2) + 1)

    above = nc.params["all_full_ratio_above"]
    onset = next(t for t in range(k, k + nc_window + 2) if all_full(t, 10**6) > above)
    fire, stop, _ = fire_window("no_capacity", onset)
    recovered = next(t for t in range(stop, stop + nc_window + 2) if not all_full(t, stop) > above)
    pair = [worker(f"10.0.0.{i + 1}:10781") for i in range(2)]
    for w in pair:
        w.counter("worker_full_seconds", every_minute(57, k, stop))
    out.append(Scenario(
        "bursts: all full at once most of the time, available at every evaluation",
        "no_capacity", [*pair, bystander()], onset, recovered, _agent_labels(config, pair[0]),
        lambda t, stop=stop: no_capacity_text(pair[0], 2, 2, 0, 0, all_full(t, stop) * secs)))

    # WorkersGone: both workers vanish at k and come back; or never come back, and the
    # alert ends by itself once the lookback no longer sees them
    gone = a["workers_gone"]
    lookback = minutes(gone.params["lookback"])
    _, stop, recovered = fire_window("workers_gone", k)
    for name, back, end in (("workers come back", stop, recovered),
                            ("workers never come back", None, k + lookback)):
        w1, w2 = worker("10.0.0.1:10781"), worker("10.0.0.2:10781")
        for w in (w1, w2):
            w.present = lambda t, b=back: not (k <= t and (b is None or t < b))
        out.append(Scenario(
            name, "workers_gone", [w1, w2, bystander()], k, end, _agent_labels(config, w1),
            f"{cap(agent_phrase(config, w1))} had up to 2 workers in the last "
            f"{gone.params['lookback']} and now Prometheus sees none, and no target of it is "
            f"failing scrapes: every dispatch to it fails with \"no worker available\"."))

    # CapacityLow: the only worker's effective load leaves half the configured headroom
    below = a["capacity_low"].params["headroom_below"]
    capacity = min(0.7, tl)
    effective = capacity * (1 - below / 2)
    headroom = (capacity - effective) / capacity
    _, stop, recovered = fire_window("capacity_low", k)
    w1 = worker("10.0.0.1:10781").gauge("worker_load_threshold_ratio", 0.7)
    w1.gauge("worker_effective_load_ratio", switch(0.0, effective, k, stop))
    out.append(Scenario(
        "headroom below the threshold", "capacity_low", [w1, bystander()], k, recovered,
        _agent_labels(config, w1),
        f"{cap(agent_phrase(config, w1))} has {humanize_percentage(headroom)} of its job capacity "
        f"left (alert below {below * 100:g}%): a burst of calls will find every worker full."))

    out.append(_exhaustion(config, worker, bystander))

    # JobRejectionsHigh: offers start at k and every one is refused; traffic stops at `stop`
    p = a["job_rejections_high"].params
    per_minute = math.ceil(300 * p["min_requests_per_second"]) + 60
    fire, stop, recovered = fire_window("job_rejections_high", k + 1, lag=RATE_MIN)
    w1 = worker("10.0.0.1:10781")
    w1.counter("job_requests", every_minute(per_minute, k, stop))
    w1.counter("job_requests_rejected", every_minute(per_minute, k, stop), reason="full")
    w1.counter("job_requests_rejected", 0, reason="on_request")
    out.append(Scenario(
        "every offer refused", "job_rejections_high", [w1, bystander()], k + 1, recovered,
        _agent_labels(config, w1),
        f"Workers of {agent_phrase(config, w1)} refused 100% of the job offers of the last 5m "
        f"because they were full or draining or their request handler failed to answer (alert "
        f"above {p['ratio_above'] * 100:g}%; refusals by on_request do not count); the reason "
        f"label of the refusals says which."))

    # AssignmentTimeouts: a steady trickle of timeouts from k
    per_minute = math.floor(a["assignment_timeouts"].params["count_above"]) + 1
    fire, stop, recovered = fire_window("assignment_timeouts", k + 1, lag=RATE_MIN)
    w1 = worker("10.0.0.1:10781").counter("assignment_timeouts", every_minute(per_minute, k, stop))
    out.append(Scenario(
        "steady assignment timeouts", "assignment_timeouts", [w1, bystander()], k + 1, recovered,
        _agent_labels(config, w1),
        lambda t, w1=w1, n=per_minute, stop=stop:
        f"Workers of {agent_phrase(config, w1)} accepted about "
        f"{plural(n * increments_in_window(t, k, stop, RATE_MIN), 'job')} in the last 5m whose "
        f"assignment never arrived (AssignmentTimeoutError): each one is a lost call."))

    # JobsFailing: from k every job that ends has failed
    p = a["jobs_failing"].params
    window = minutes(p["window"])
    per_minute = max(1, math.ceil(p["min_failures"]))
    kj = max(k, window + 1)
    fire, stop, recovered = fire_window("jobs_failing", kj + 1, lag=window)
    w1 = worker("10.0.0.1:10781")
    w1.counter("jobs_finished", every_minute(per_minute, kj, stop))
    w1.counter("jobs_failed", every_minute(per_minute, kj, stop), reason="entrypoint_error")
    w1.counter("jobs_failed", 0, reason="process_exit")
    out.append(Scenario(
        "every job fails", "jobs_failing", [w1, bystander()], kj + 1, recovered,
        _agent_labels(config, w1),
        f"100% of the jobs of {agent_phrase(config, w1)} that ended or failed in the last "
        f"{p['window']} failed (alert above {p['ratio_above'] * 100:g}% with at least "
        f"{go_number(p['min_failures'])} failures)."))

    # JobsFailing, 1.2/1.3 zombies: every job fails and none ever ends; 100%, not more
    fire, stop, recovered = fire_window("jobs_failing", kj + 1, lag=window)
    w1 = worker("10.0.0.1:10781")
    w1.counter("jobs_finished", 0)
    w1.counter("jobs_failed", every_minute(per_minute, kj, stop), reason="entrypoint_error")
    out.append(Scenario(
        "failing jobs never end", "jobs_failing", [w1, bystander()], kj + 1, recovered,
        _agent_labels(config, w1),
        f"100% of the jobs of {agent_phrase(config, w1)} that ended or failed in the last "
        f"{p['window']} failed (alert above {p['ratio_above'] * 100:g}% with at least "
        f"{go_number(p['min_failures'])} failures)."))

    # WorkerStuckFull: one worker stays full (one scrape sees it available for a moment);
    # a draining one (also full) must not alert
    sf = a["worker_stuck_full"].params
    sf_window = minutes(sf["window"])
    need = math.floor(sf_window * sf["full_ratio_above"]) + 1  # full minutes in the window
    onset = k + need
    fire, stop, recovered = fire_window("worker_stuck_full", onset)
    recovered = stop + sf_window - need + 1
    dip = k + need // 2
    w1 = worker("10.0.0.1:10781").gauge(
        "worker_full", lambda t, stop=stop: 1 if k <= t < stop and t != dip else 0)
    w1.counter("worker_full_seconds", every_minute(60, k, stop))
    w2 = worker("10.0.0.2:10781").gauge("worker_full", 1).gauge("worker_draining", 1)
    w2.counter("worker_full_seconds", 60)

    def stuck_text(t: int, w1: Worker = w1, stop: int = stop) -> str:
        full_minutes = increments_in_window(t, k, stop, sf_window)
        ratio = (60 * full_minutes) / sf["window"].seconds
        return (f"{cap(worker_phrase(config, w1))} reported full, without draining, for "
                f"{humanize_percentage(ratio)} of the last {sf['window']}, far longer than a "
                f"job lasts: its load is stuck and its capacity is lost.")

    out.append(Scenario(
        "one worker stays full, a draining one is ignored", "worker_stuck_full",
        [w1, w2, bystander()], onset, recovered, w1.labels, stuck_text))

    # WorkerFlapping: turns full more often than allowed, every minute
    p = a["worker_flapping"].params
    window = minutes(p["window"])
    per_minute = math.ceil(p["transitions_at_least"] / window)  # exactly at the threshold
    need = math.ceil(p["transitions_at_least"] / per_minute)  # minutes of flapping
    kf = max(k, window + 1)
    fire, stop, _ = fire_window("worker_flapping", kf + need)
    recovered = stop + window - need + 1
    w1 = worker("10.0.0.1:10781").counter("worker_full_transitions",
                                          every_minute(per_minute, kf, stop))
    out.append(Scenario(
        "a worker turns full at exactly the threshold's pace", "worker_flapping",
        [w1, bystander()], kf + need, recovered, w1.labels,
        lambda t, w1=w1, n=per_minute, stop=stop:
        f"{cap(worker_phrase(config, w1))} turned full "
        f"{n * increments_in_window(t, kf, stop, window)} times in the last {p['window']} "
        f"(alert at {go_number(p['transitions_at_least'])}): its load hovers around its "
        f"threshold and job offers race with its status."))

    # WorkerNotRegistered
    _, stop, recovered = fire_window("worker_not_registered", k)
    w1 = worker("10.0.0.1:10781").gauge("worker_registered", switch(1, 0, k, stop))
    out.append(Scenario(
        "a worker loses its registration", "worker_not_registered", [w1, bystander()], k, recovered,
        w1.labels,
        f"{cap(worker_phrase(config, w1))} runs but has not been registered with the LiveKit "
        f"server for {a['worker_not_registered'].for_}: it receives no job offers."))

    # LoadFunctionErrors: load_fnc raises ten times a minute
    fire, stop, recovered = fire_window("load_function_errors", k + 1, lag=RATE_MIN)
    w1 = worker("10.0.0.1:10781")
    w1.counter("load_fnc_errors", every_minute(10, k, stop), error="exception")
    w1.counter("load_fnc_errors", 0, error="nan")
    out.append(Scenario(
        "load_fnc raises", "load_function_errors", [w1, bystander()], k + 1, recovered,
        {**w1.labels, "error": "exception"},
        lambda t, w1=w1, stop=stop:
        f"The load_fnc of {worker_phrase(config, w1)} failed "
        f"{plural(10 * increments_in_window(t, k, stop, RATE_MIN), 'time')} in the last 5m "
        f"with error "
        f"\"exception\": the load it reports is wrong or missing, and a missing load keeps it "
        f"from jobs."))

    # LoadStale: load_fnc runs twice a second, then the SDK's load loop dies at minute k
    stale = a["load_stale"]
    stale_window = minutes(stale.params["window"])
    fire, stop, recovered = fire_window("load_stale", k + stale_window, lag=1)
    w1 = worker("10.0.0.1:10781").gauge("worker_registered", 1)
    w1.counter("load_fnc_duration_seconds", lambda t, stop=stop: 0.0 if k < t <= stop else 120.0,
               suffix="_count")
    out.append(Scenario(
        "the load loop stops", "load_stale", [w1, bystander()], k + stale_window, recovered,
        w1.labels,
        f"The SDK of {worker_phrase(config, w1)} called load_fnc 0.00 times a second over the "
        f"last {stale.params['window']} (normally 2): its load loop has stopped, the load it "
        f"reports is frozen and no longer follows its jobs."))

    # LoadThresholdAboveTargetLoad: a rollout raises load_threshold above target_load
    high = round(tl + 0.1, 6)
    _, stop, recovered = fire_window("load_threshold_above_target_load", k)
    w1 = worker("10.0.0.1:10781").gauge("worker_load_threshold_ratio", switch(tl, high, k, stop))
    out.append(Scenario(
        "a rollout raises load_threshold", "load_threshold_above_target_load",
        [w1, bystander()], k, recovered, w1.labels,
        f"{cap(worker_phrase(config, w1))} has load_threshold {go_number(high)}, above the "
        f"server's target_load {go_number(tl)}: between the two it reports available but wins "
        f"no job, so the capacity planned on its threshold does not exist."))

    # TargetDown: the scrape fails (up == 0) and the worker's series go stale
    _, stop, recovered = fire_window("target_down", k)
    w1 = worker("10.0.0.1:10781")
    w1.up = lambda t: 0 if k <= t < stop else 1
    w1.present = lambda t: not (k <= t < stop)
    out.append(Scenario(
        "scrapes fail", "target_down", [w1, bystander()], k, recovered, w1.target_labels,
        f"Prometheus has failed to scrape {w1.instance} (job {w1.labels.get('job', '')})"
        f"{where(config, w1.labels)} for {a['target_down'].for_}: that worker's metrics are "
        f"missing and the capacity alerts cannot see it."))

    out += _pack_scenarios(config, worker, bystander, fire_window, k)
    return [s for s in out if s is not None and a[s.alert].enabled]


def worker_key_labels(config: RulesConfig, w: Worker) -> dict[str, str]:
    """The labels of a per-worker figure after deduplication."""
    return {k: w.labels[k] for k in (*config.aggregation_labels, *config.worker_labels,
                                     m.AGENT_LABEL) if k in w.labels}


def _pack_scenarios(config: RulesConfig, worker: Callable[..., Worker],
                    bystander: Callable[[], Worker],
                    fire_window: Callable[..., tuple[int, int, int]],
                    k: int) -> list[Scenario]:
    """The job-launch and the monitoring-blindness alerts."""
    a = config.alerts
    out: list[Scenario] = []
    sel = selector_labels(config)

    # JobLaunchesFailing: assigned jobs get no process ("failed to acquire process")
    lw = minutes(a["job_launches_failing"].params["window"])
    window = a["job_launches_failing"].params["window"]
    fire, stop, recovered = fire_window("job_launches_failing", k + 1, lag=lw)
    w1 = worker("10.0.0.1:10781")
    w1.counter("job_process_failures", every_minute(2, k, stop), reason="acquire")
    w1.counter("job_process_failures", 0, reason="launch")
    w1.counter("job_process_failures", every_minute(5, 0), reason="initialize")  # not these

    def launch_text(t: int, w1: Worker, per_minute: int, stop: int) -> str:
        n = per_minute * increments_in_window(t, k, stop, lw)
        return (f"About {plural(n, 'job')} assigned to {worker_phrase(config, w1)} in the last "
                f"{window} could not be launched (the SDK could not acquire or start a job "
                f"process): each is a caller who accepted the call and got no agent.")

    out.append(Scenario(
        "assigned jobs get no process", "job_launches_failing", [w1, bystander()], k + 1,
        recovered, w1.labels, lambda t, w1=w1, stop=stop: launch_text(t, w1, 2, stop)))

    # JobLaunchesFailing: assignments keep arriving and no job is ever launched
    w2 = worker("10.0.0.1:10781")
    w2.counter("job_assignments", every_minute(3, k, stop))
    w2.counter("jobs_launched", 0)
    out.append(Scenario(
        "assignments arrive and nothing launches", "job_launches_failing", [w2, bystander()],
        k + 1, recovered, w2.labels, lambda t, w2=w2, stop=stop: launch_text(t, w2, 3, stop)))

    # JobProcessInitFailures: one initialisation failure a minute, jobs still launch
    pw = a["job_process_init_failures"].params["window"]
    fire, stop, recovered = fire_window("job_process_init_failures", k + 1, lag=minutes(pw))
    w1 = worker("10.0.0.1:10781")
    w1.counter("job_process_failures", every_minute(1, k, stop), reason="initialize")
    w1.counter("jobs_launched", 4).counter("job_assignments", 4)
    out.append(Scenario(
        "job processes fail to initialise", "job_process_init_failures", [w1, bystander()],
        k + 1, recovered, {**w1.labels, "reason": "initialize"},
        lambda t, w1=w1, stop=stop:
        f"Job processes of {worker_phrase(config, w1)} failed to start or initialise "
        f"{plural(increments_in_window(t, k, stop, minutes(pw)), 'time')} in the last {pw} "
        f"(\"error initializing process\"): jobs wait for a process, and if none "
        f"initialises, assigned jobs are lost."))

    # ExporterHooksDetached: the worker_run hook never attached, on two workers of the agent
    _, stop, recovered = fire_window("exporter_hooks_detached", k)
    blind = [worker(f"10.0.0.{i}:10781") for i in (1, 2)]
    for b in blind:
        b.labelled_gauge("exporter_hooks_attached", switch(1, 0, k, stop), hook="worker_run")
        b.labelled_gauge("exporter_hooks_attached", 1, hook="load_fnc")
    out.append(Scenario(
        "run() never hooked", "exporter_hooks_detached", [*blind, bystander()], k, recovered,
        {**_agent_labels(config, blind[0]), "hook": "worker_run"},
        f"The exporter's \"worker_run\" hook has not been attached for "
        f"{a['exporter_hooks_detached'].for_} on 2 workers of {agent_phrase(config, blind[0])} "
        f"(a hook into run() never saw the worker run, or the SDK internal it needs has moved): "
        f"what that hook counts is missing, and the alerts built on it are blind there."))

    # ExporterMetricsMissing: the target answers scrapes with no livekit_agents_* sample
    _, stop, recovered = fire_window("exporter_metrics_missing", k)
    w1 = worker("10.0.0.1:10781")
    w1.present = lambda t, stop=stop: not (k <= t < stop)
    w1.up = lambda t: 1
    out.append(Scenario(
        "a target without the exporter's samples", "exporter_metrics_missing",
        [w1, bystander()], k, recovered, w1.target_labels,
        f"Prometheus scrapes {w1.instance} (job {w1.labels.get('job', '')})"
        f"{where(config, w1.labels)}, which the alert pack's selector matches, but it exposes "
        f"no livekit_agents_* samples: it is not an instrumented worker, or instrument() never "
        f"ran in it, and the pack cannot see it."))

    # SelectorMatchesNothing: the only target goes away
    _, stop, recovered = fire_window("selector_matches_nothing", k)
    w1 = worker("10.0.0.1:10781")
    w1.present = lambda t, stop=stop: not (k <= t < stop)
    up = "up{" + ", ".join(f'{n}="{v}"' for n, v in sel.items()) + "}" if sel else "up"
    out.append(Scenario(
        "no target at all", "selector_matches_nothing", [w1], k, recovered, dict(sel),
        f"No target matches the alert pack's selector {up} for "
        f"{a['selector_matches_nothing'].for_}: every other LiveKit Agents alert is silent. "
        f"Check the scrape job's labels against the rules' selector."))

    # ExporterErrors: one caught failure in the wire tap
    ew = a["exporter_errors"].params["window"]
    fire, stop, recovered = fire_window("exporter_errors", k + 1, lag=minutes(ew))
    w1 = worker("10.0.0.1:10781")
    w1.counter("exporter_errors", lambda t: 1 if t == k + 1 else 0, component="wire")
    recovered = k + 1 + minutes(ew)
    out.append(Scenario(
        "one caught failure", "exporter_errors", [w1, bystander()], k + 1, recovered,
        {**w1.labels, "component": "wire"},
        f"The exporter of {worker_phrase(config, w1)} caught 1 failure of its \"wire\" part in "
        f"the last {ew}; the worker was not affected, but the numbers that part produces may be "
        f"missing. Its log says what failed."))

    # EffectiveLoadUnknown: the SDK reader returns NaN
    _, stop, recovered = fire_window("effective_load_unknown", k)
    w1 = worker("10.0.0.1:10781")
    w1.gauge("worker_effective_load_ratio", switch(0.25, math.nan, k, stop))
    out.append(Scenario(
        "the effective load reads NaN", "effective_load_unknown", [w1, bystander()], k,
        recovered, worker_key_labels(config, w1),
        f"The exporter cannot read the effective load of {worker_phrase(config, w1)} from the "
        f"SDK (NaN) for {a['effective_load_unknown'].for_}: the capacity rules judge it by its "
        f"status alone and leave it out of the headroom."))
    return out


def _exhaustion(config: RulesConfig, worker: Callable[..., Worker],
                bystander: Callable[[], Worker]) -> Scenario:
    """Headroom falls linearly, ``h(t) = 1 - t / T``; the rule predicts ``h(t + horizon)``.

    It fires once ``h(t) < headroom_below`` and ``t >= T - horizon``; ``T`` ends in .5 so
    that no evaluation sits on a boundary.
    """
    a = config.alerts["capacity_exhaustion_predicted"]
    horizon = Fraction(a.params["horizon"].seconds) / STEP
    below = Fraction(a.params["headroom_below"])
    exhausted = horizon + 40 + Fraction(1, 2)
    while (exhausted * (1 - below)).denominator == 1 or (exhausted - horizon).denominator == 1:
        exhausted += Fraction(1, 7)  # keep evaluations off both boundaries
    onset = max(math.ceil(exhausted - horizon), math.floor(exhausted * (1 - below)) + 1)
    stop = onset + minutes(a.for_) + 5
    capacity = min(0.7, config.server_target_load)
    w1 = worker("10.0.0.1:10781").gauge("worker_load_threshold_ratio", 0.7)

    def effective(t: int) -> float:
        return 0.0 if t >= stop else capacity * t / float(exhausted)

    w1.gauge("worker_effective_load_ratio", effective)
    assert stop < exhausted, "the scenario must fire while headroom is still falling"
    return Scenario(
        "headroom falls steadily", "capacity_exhaustion_predicted", [w1, bystander()], onset,
        stop,
        _agent_labels(config, w1),
        # the current headroom, by the same float steps as the rules
        lambda t: f"{cap(agent_phrase(config, w1))} has "
        f"{humanize_percentage((capacity - effective(t)) / capacity)} of its job capacity left "
        f"and, on the trend of the last {a.params['lookback']}, still falling, runs out within "
        f"{a.params['horizon']}.")


# --- rendering scenarios as promtool tests ------------------------------------------------


def expected_alert(config: RulesConfig, scenario: Scenario, t: int,
                   annotations: Callable[[str, dict[str, str], str], dict[str, str]]
                   ) -> dict[str, Any]:
    labels = {**scenario.labels, "severity": config.alerts[scenario.alert].severity,
              "concern": DEFINITIONS[scenario.alert].concern}
    # while keep_firing_for holds an alert whose condition ended, its annotations are the
    # ones of the last evaluation the condition held
    shown = min(t, scenario.recovered - 1)
    return {"exp_labels": labels,
            "exp_annotations": annotations(scenario.alert, labels, scenario.description_at(shown))}


def alert_test(config: RulesConfig, scenario: Scenario,
               annotations: Callable[[str, dict[str, str], str], dict[str, str]]
               ) -> dict[str, Any]:
    """Absent one evaluation before onset + for, firing at it, firing until the recovery is
    visible plus keep_firing_for, and absent from then on."""
    alert = config.alerts[scenario.alert]
    fire = scenario.onset + minutes(alert.for_)
    assert scenario.recovered > fire, "the scenario must fire before it recovers"
    resolved = scenario.recovered + minutes(alert.keep_firing_for)
    checks = [(fire - 1, False), (fire, True), (scenario.recovered - 1, True),
              (resolved - 1, True), (resolved, False), *scenario.extra_checks]
    length = max(t for t, _ in checks) + 5
    return {
        "name": f"{alert.name}: {scenario.name}",
        "interval": f"{STEP}s",
        "input_series": [s for w in scenario.workers for s in w.series(length)],
        "alert_rule_test": [
            {"eval_time": f"{t}m", "alertname": alert.name,
             "exp_alerts": [expected_alert(config, scenario, t, annotations)] if on else []}
            for t, on in sorted(set(checks)) if t >= 0
        ],
    }


def silent_test(config: RulesConfig, name: str, workers: Iterable[Worker], length: int,
                allowed: Iterable[str] = ()) -> dict[str, Any]:
    """No enabled alert (but the ``allowed`` keys) fires at any evaluation of ``workers``'
    series."""
    names = [a.name for key, a in config.alerts.items() if a.enabled and key not in allowed]
    return {
        "name": name,
        "interval": f"{STEP}s",
        "input_series": [s for w in workers for s in w.series(length)],
        "alert_rule_test": [{"eval_time": f"{t}m", "alertname": n, "exp_alerts": []}
                            for t in range(length) for n in names],
    }


def bursty_fleet(config: RulesConfig) -> list[Worker]:
    """A busy but healthy fleet: two workers dip in and out of full every few minutes
    while two others keep room; offers are rarely refused, a job fails now and then.
    A broken worker of another job (not matched by the selector) must be ignored."""
    sel = selector_labels(config)
    tl = config.server_target_load
    fleet = []
    for i, phase in ((1, 0), (2, 2)):
        def full(t: int, p: int = phase) -> int:
            return 1 if (t + p) % 5 < 3 else 0

        w = Worker(f"10.0.0.{i}:10781", job_labels=dict(sel))
        w.gauge("worker_load_threshold_ratio", tl)
        w.gauge("worker_full", full)
        w.gauge("worker_load_ratio", lambda t, f=full: tl + 0.02 if f(t) else tl * 0.8)
        w.gauge("worker_effective_load_ratio", lambda t, f=full: tl + 0.05 if f(t) else tl * 0.85)
        w.gauge("worker_active_jobs", lambda t, f=full: 4 if f(t) else 3)
        w.counter("worker_full_transitions", lambda t, f=full: 1 if f(t) and not f(t - 1) else 0)
        w.counter("worker_full_seconds", lambda t, f=full: 60 if f(t) else 0)
        w.counter("job_requests", 20)
        w.counter("job_requests_accepted", 19)
        w.counter("job_requests_rejected", 1, reason="full")
        w.counter("jobs_launched", 4)
        w.counter("jobs_finished", 4)
        fleet.append(w)
    for i in (3, 4):
        w = Worker(f"10.0.0.{i}:10781", job_labels=dict(sel))
        w.gauge("worker_load_threshold_ratio", tl)
        w.gauge("worker_load_ratio", 0.3 * tl).gauge("worker_effective_load_ratio", 0.3 * tl)
        w.counter("job_requests", 20).counter("job_requests_accepted", 20)
        w.counter("job_requests_rejected", 0, reason="full")
        w.counter("jobs_launched", 4).counter("jobs_finished", 4)
        w.counter("jobs_failed", lambda t: 1 if t % 10 == 0 else 0, reason="entrypoint_error")
        w.counter("assignment_timeouts", 0)
        w.counter("load_fnc_errors", 0, error="exception")
        fleet.append(w)
    if not sel:
        return fleet
    # everything wrong, but its target does not match the selector: it must be ignored
    first = next(iter(sel))
    intruder = Worker("10.9.9.9:10781", agent="intruder", job_labels={**sel, first: "other"})
    for short, value in (("worker_registered", 0), ("worker_full", 1),
                         ("worker_load_threshold_ratio", 0.95)):
        intruder.gauge(short, value)
    intruder.counter("load_fnc_errors", 10, error="exception")
    intruder.counter("assignment_timeouts", 5)
    intruder.up = lambda t: 0
    return [*fleet, intruder]


def refused_then_placed_elsewhere(config: RulesConfig) -> list[Worker]:
    """Every worker refuses an offer as full each minute, each at its own time: a different
    one is free at every evaluation and their full seconds (35 s a minute each) never prove
    them full at once, so the server placed every refused offer on the free worker and no
    call was lost (NoCapacity must stay silent)."""
    sel = selector_labels(config)
    fleet = []
    for i in range(3):
        def full(t: int, i: int = i) -> int:
            return 1 if t % 3 != i else 0

        w = Worker(f"10.0.0.{i + 1}:10781", job_labels=dict(sel))
        w.gauge("worker_load_threshold_ratio", config.server_target_load)
        w.gauge("worker_full", full)
        w.gauge("worker_effective_load_ratio", lambda t, f=full: 0.75 if f(t) else 0.5)
        w.gauge("worker_load_ratio", lambda t, f=full: 0.6 if f(t) else 0.5)
        w.counter("job_requests", 10).counter("job_requests_accepted", 9)
        w.counter("job_requests_rejected", 1, reason="full")
        w.counter("worker_full_seconds", 35)
        fleet.append(w)
    return fleet


def tiny_traffic(config: RulesConfig) -> list[Worker]:
    """An agent offered one job every ten minutes, and it is refused: too few to page."""
    w = Worker("10.0.0.7:10781", agent="tiny", job_labels=selector_labels(config))
    w.gauge("worker_load_threshold_ratio", config.server_target_load)
    def every_ten(t):
        return (1 if t % 10 == 0 else 0)
    w.counter("job_requests", every_ten)
    w.counter("job_requests_rejected", every_ten, reason="on_request")
    return [w]


def failures_below_either_threshold(config: RulesConfig) -> list[Worker]:
    """JobsFailing needs both a failure ratio and a failure count above their thresholds:
    one agent fails many jobs out of far more (ratio too low), another fails every job but
    too few of them within the window (count too low)."""
    p = config.alerts["jobs_failing"].params
    window = minutes(p["window"])
    sel = selector_labels(config)
    busy = Worker("10.0.0.5:10781", agent="busy", job_labels=dict(sel))
    per_minute = 10 * math.ceil(p["min_failures"])
    busy.counter("jobs_finished", math.ceil(per_minute / (p["ratio_above"] * 0.5)))
    busy.counter("jobs_failed", per_minute, reason="entrypoint_error")
    rare = Worker("10.0.0.6:10781", agent="rare", job_labels=dict(sel))
    # one failure at most in any window (fewer than min_failures), and every job that ends fails
    gap = window + 1
    def spaced(t):
        return (1 if t % gap == 0 else 0)
    rare.counter("jobs_finished", spaced)
    rare.counter("jobs_failed", spaced, reason="entrypoint_error")
    return [busy, rare]


def _steady(config: RulesConfig, instance: str, agent: str = "support", **kw: Any) -> Worker:
    """A healthy worker with traffic: offers accepted, jobs launched and finished."""
    w = Worker(instance, agent=agent, job_labels=selector_labels(config), **kw)
    w.gauge("worker_load_threshold_ratio", config.server_target_load)
    w.counter("job_requests", 10).counter("job_requests_accepted", 10)
    w.counter("job_assignments", 10).counter("jobs_launched", 10).counter("jobs_finished", 10)
    w.counter("worker_full_seconds", 0).counter("load_fnc_duration_seconds", 120,
                                                suffix="_count")
    return w


def scale_to_zero(config: RulesConfig) -> list[Worker]:
    """Agent "batch" (in scale_to_zero_agents) goes to zero workers and stays there; another
    agent keeps running, so the selector still matches."""
    gone = [_steady(config, f"10.0.1.{i}:10781", agent="batch") for i in (1, 2)]
    for w in gone:
        w.present = lambda t: t < 10
    return [*gone, _steady(config, "10.0.0.1:10781")]


def effective_load_unreadable(config: RulesConfig) -> list[Worker]:
    """The SDK reader returns NaN on every worker while they take jobs normally: the
    monitoring warning fires, no capacity alert does."""
    fleet = [_steady(config, f"10.0.0.{i}:10781") for i in (1, 2)]
    for w in fleet:
        w.gauge("worker_effective_load_ratio", math.nan)
    return fleet


def routing_refusals(config: RulesConfig) -> list[Worker]:
    """A request handler that routes 75% of offers away by design (reason on_request)."""
    w = _steady(config, "10.0.0.1:10781")
    w.counter("job_requests", 40).counter("job_requests_accepted", 10)
    w.counter("job_requests_rejected", 30, reason="on_request")
    w.counter("job_requests_rejected", 0, reason="full")
    return [w]


def scrape_gap(config: RulesConfig) -> list[Worker]:
    """Every scrape of the agent fails for three minutes (up 0, series stale), then resumes."""
    fleet = [_steady(config, f"10.0.0.{i}:10781") for i in (1, 2)]
    for w in fleet:
        w.present = lambda t: not (20 <= t < 23)
        w.up = lambda t: 0 if 20 <= t < 23 else 1
    return fleet


def step_then_flat(config: RulesConfig) -> list[Worker]:
    """The headroom steps down once (a deploy halves capacity) and stays flat."""
    tl = config.server_target_load
    w = _steady(config, "10.0.0.1:10781")
    w.gauge("worker_effective_load_ratio", lambda t: 0.05 * tl if t < 60 else 0.6 * tl)
    w.gauge("worker_load_ratio", lambda t: 0.05 * tl if t < 60 else 0.6 * tl)
    return [w]


def rolling_restart(config: RulesConfig) -> list[Worker]:
    """A worker is replaced: the old pod goes away, the new one takes 30 s to register
    (unregistered at one scrape), its counters start from zero."""
    old = _steady(config, "10.0.0.1:10781")
    old.present = lambda t: t < 20
    new = _steady(config, "10.0.0.3:10781")
    new.present = lambda t: t >= 20
    new.gauge("worker_registered", lambda t: 0 if t == 20 else 1)
    return [old, new, _steady(config, "10.0.0.2:10781")]


# --- recording rules ------------------------------------------------------------------------


@dataclass
class FleetWorker:
    """A worker of the recording-rule fleet, with the values the rules must read."""

    w: Worker
    registered: float = 1
    full: float = 0
    draining: float = 0
    load: float = 0.25
    effective: float = 0.25
    threshold: float = 0.7
    active: float = 2
    requests: float = 0  # per minute
    rejected: dict[str, float] = field(default_factory=dict)  # reason -> per minute
    timeouts: float = 0
    dispatches: float = 0  # per minute, all in the (0.1, 0.25] bucket
    duplicate: bool = False  # the same worker read by a second scrape config


def recording_fleet(config: RulesConfig) -> list[FleetWorker]:
    """Every case the availability rule separates, plus a second cluster and agent."""
    sel = selector_labels(config)
    tl = config.server_target_load

    def fw(instance: str, cluster: str = "eu", agent: str = "support", **values: Any
           ) -> FleetWorker:
        return FleetWorker(Worker(instance, agent=agent, cluster=cluster, job_labels=dict(sel)),
                           **values)

    nan = float("nan")
    return [
        fw("a:1", load=0.2, effective=0.3, requests=60, rejected={"on_request": 6},
           dispatches=10),  # available
        fw("a:2", full=1, load=tl + 0.05, effective=tl + 0.1, requests=30,
           rejected={"full": 30}),  # full
        fw("a:3", draining=1, full=1, load=0.1, effective=0.1),  # draining: no capacity
        fw("a:4", registered=0, load=0.1, effective=0.1),  # not registered: no capacity
        fw("a:5", threshold=min(tl + 0.2, 1.0), load=tl + 0.05 if tl < 0.95 else tl,
           effective=tl + 0.05 if tl < 0.95 else tl),  # says available, server disagrees
        fw("a:6", threshold=math.inf, load=0.5 * tl, effective=0.5 * tl),  # dev mode
        fw("a:7", load=nan, effective=nan),  # no load sample yet
        fw("a:8", threshold=0.6 * tl, load=0.3 * tl, effective=0.65 * tl,
           timeouts=2),  # 1.8: reserved slots make it full
        fw("b:1", cluster="us", load=0.5 * tl, effective=0.5 * tl, requests=12),
        fw("c:1", agent="sales", full=1, load=0.9, effective=0.9),
        # a:1 again, through a ServiceMonitor next to the PodMonitor (another endpoint label)
        FleetWorker(Worker("a:1", job_labels={**sel, "endpoint": "service-metrics"}),
                    load=0.2, effective=0.3, requests=60, rejected={"on_request": 6},
                    dispatches=10, duplicate=True),
    ]


def fleet_series(fleet: list[FleetWorker], length: int) -> list[dict[str, str]]:
    out = []
    buckets = m.BY_SHORT["job_dispatch_latency_seconds"].buckets
    for f in fleet:
        w = f.w
        for short, value in (("worker_registered", f.registered), ("worker_full", f.full),
                             ("worker_draining", f.draining), ("worker_load_ratio", f.load),
                             ("worker_effective_load_ratio", f.effective),
                             ("worker_load_threshold_ratio", f.threshold),
                             ("worker_active_jobs", f.active)):
            w.gauge(short, value)
        w.counter("job_requests", f.requests)
        for reason in m.REJECT_REASONS:
            w.counter("job_requests_rejected", f.rejected.get(reason, 0), reason=reason)
        w.counter("assignment_timeouts", f.timeouts)
        out += w.series(length)
        name = m.series("job_dispatch_latency_seconds")
        for le in (*buckets, math.inf):
            per_minute = f.dispatches if le > 0.1 else 0
            out.append({"series": series_text(name + "_bucket", {**w.labels, "le": fmt(le)}),
                        "values": " ".join(fmt(per_minute * t) for t in range(length))})
        for suffix in ("_count", "_sum"):
            per_minute = f.dispatches * (0.2 if suffix == "_sum" else 1)
            out.append({"series": series_text(name + suffix, w.labels),
                        "values": " ".join(fmt(per_minute * t) for t in range(length))})
    return out


def _available(f: FleetWorker, tl: float) -> bool:
    # a NaN load compares false, as in PromQL; a NaN effective load is unknown, not full
    return (f.registered == 1 and f.full == 0 and f.draining == 0 and f.load < tl
            and (f.effective < f.threshold or math.isnan(f.effective)))


def _capacity(f: FleetWorker, tl: float) -> float | None:
    if f.registered != 1 or f.draining == 1 or not f.threshold >= 0 or math.isnan(f.effective):
        return None
    return min(f.threshold, tl)


def recording_expectations(config: RulesConfig, fleet: list[FleetWorker]
                           ) -> list[tuple[str, dict[str, str], float]]:
    """(rule, group labels, value) per agent group, computed from the rule's definition;
    a worker read twice counts once."""
    tl = config.server_target_load
    fleet = [f for f in fleet if not f.duplicate]
    groups: dict[tuple[tuple[str, str], ...], list[FleetWorker]] = {}
    for f in fleet:
        key = tuple((label, f.w.labels[label]) for label in (*config.aggregation_labels,
                                                             m.AGENT_LABEL))
        groups.setdefault(key, []).append(f)
    out = []
    for key, members in groups.items():
        labels = dict(key)
        caps = [(f, c) for f in members if (c := _capacity(f, tl)) is not None]
        total_capacity = sum(c for _, c in caps)
        headroom = sum(max(0.0, c - f.effective) for f, c in caps)
        loads = [f.load for f in members if not math.isnan(f.load)]
        requests = sum(f.requests for f in members) / 60
        rejected = sum(sum(f.rejected.values()) for f in members) / 60
        out += [
            (rec.WORKERS, labels, len(members)),
            (rec.WORKERS_REGISTERED, labels, sum(f.registered for f in members)),
            (rec.WORKERS_AVAILABLE, labels, sum(_available(f, tl) for f in members)),
            (rec.WORKERS_FULL, labels, sum(f.full * f.registered for f in members)),
            (rec.ACTIVE_JOBS, labels, sum(f.active for f in members)),
            (rec.CAPACITY_HEADROOM, labels,
             headroom / total_capacity if total_capacity > 0 else 0.0),
            (rec.WORKER_LOAD, labels, sum(loads) / len(loads)),
            (rec.JOB_REQUESTS_RATE, labels, requests),
            (rec.ASSIGNMENT_TIMEOUTS_RATE, labels, sum(f.timeouts for f in members) / 60),
        ]
        if requests > 0:
            out.append((rec.JOB_REQUESTS_REJECTED_RATIO, labels, rejected / requests))
        for reason in m.REJECT_REASONS:
            out.append((rec.JOB_REQUESTS_REJECTED_RATE, {**labels, "reason": reason},
                        sum(f.rejected.get(reason, 0) for f in members) / 60))
        dispatches = sum(f.dispatches for f in members)
        for q in rec.DISPATCH_QUANTILES:
            # every dispatch is in the (0.1, 0.25] bucket: linear interpolation inside it
            if dispatches:
                out.append((rec.DISPATCH_LATENCY_QUANTILE, {**labels, "quantile": str(q)},
                            0.1 + 0.15 * q))
    return out


def recording_test(config: RulesConfig, at_minute: int = 10) -> dict[str, Any]:
    fleet = recording_fleet(config)
    expected = recording_expectations(config, fleet)
    by_rule: dict[str, list[tuple[dict[str, str], float]]] = {}
    for rule, labels, value in expected:
        by_rule.setdefault(rule, []).append((labels, value))
    tests = []
    for rule, samples in by_rule.items():
        # the exact set of series (`* 0` keeps the labels and shows a NaN as NaN) ...
        tests.append({
            "expr": f"{rule} * 0",
            "eval_time": f"{at_minute}m",
            "exp_samples": [{"labels": series_text("", labels), "value": 0}
                            for labels, _ in samples],
        })
        # ... and each value within 1e-9: promtool compares floats exactly
        for labels, value in samples:
            tests.append({
                "expr": f"abs({series_text(rule, labels)} - {fmt(value)}) < bool 1e-9",
                "eval_time": f"{at_minute}m",
                "exp_samples": [{"labels": series_text("", labels), "value": 1}],
            })
    # per-worker availability, by the same definition
    tl = config.server_target_load
    tests.append({
        "expr": rec.WORKER_AVAILABLE,
        "eval_time": f"{at_minute}m",
        "exp_samples": [{"labels": series_text(rec.WORKER_AVAILABLE,
                                               worker_key_labels(config, f.w)),
                         "value": int(_available(f, tl))} for f in fleet if not f.duplicate],
    })
    # no quantile where nothing was dispatched: no NaN series
    tests.append({
        "expr": f'{rec.DISPATCH_LATENCY_QUANTILE}{{cluster="us"}}',
        "eval_time": f"{at_minute}m",
        "exp_samples": [],
    })
    return {"name": "recording rules", "interval": f"{STEP}s",
            "input_series": fleet_series(fleet, at_minute + 2), "promql_expr_test": tests}



# --- configurations the suites run against ---------------------------------------------------

# "custom" moves every knob away from its default: thresholds, windows, a for: that is not
# a whole number of evaluations (90s) and one of 0s, severities, labels and URLs.
CUSTOM = {
    "selector": 'job="lk-agents", namespace="voice"',
    "aggregation_labels": ["cluster", "namespace"],
    "worker_labels": ["instance", "pod"],
    "server_target_load": 0.8,
    "runbook_base_url": "https://runbooks.example.org/livekit/runbooks.md",
    "grafana_url": "https://grafana.example.org/",
    "dashboard_uid": "lk-sat",
    "alerts": {
        "workers_gone": {"for": "5m", "lookback": "2h", "keep_firing_for": "0s",
                         "scrape_failure_grace": "10m"},
        "job_launches_failing": {"for": "0s", "window": "10m", "severity": "warning"},
        "job_process_init_failures": {"window": "5m", "for": "1m"},
        "exporter_hooks_detached": {"for": "3m"},
        "exporter_metrics_missing": {"for": "2m"},
        "selector_matches_nothing": {"for": "5m"},
        "exporter_errors": {"window": "5m", "keep_firing_for": "1m"},
        "effective_load_unknown": {"for": "2m"},
        "capacity_low": {"for": "20m", "headroom_below": 0.25},
        "capacity_exhaustion_predicted": {"for": "5m", "horizon": "2h", "lookback": "30m",
                                          "headroom_below": 0.6, "trend_window": "3m"},
        "job_rejections_high": {"for": "3m", "ratio_above": 0.3,
                                "min_requests_per_second": 0.1},
        "assignment_timeouts": {"for": "0s", "count_above": 2},
        "jobs_failing": {"for": "2m", "window": "10m", "ratio_above": 0.2, "min_failures": 5},
        "worker_stuck_full": {"for": "5m", "severity": "critical", "window": "30m",
                              "full_ratio_above": 0.9},
        "worker_flapping": {"for": "10m", "window": "10m", "transitions_at_least": 20,
                            "severity": "warning"},
        "no_capacity": {"for": "90s", "severity": "warning", "keep_firing_for": "3m",
                        "window": "3m", "all_full_ratio_above": 0.2},
        "worker_not_registered": {"for": "3m"},
        "load_function_errors": {"for": "2m", "severity": "info"},
        "load_threshold_above_target_load": {"for": "30m"},
        "target_down": {"for": "1m"},
    },
}
TEST_CONFIGS: dict[str, dict[str, Any]] = {"defaults": {}, "custom": CUSTOM}
