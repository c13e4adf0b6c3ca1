"""Turns observed worker events into metric updates, off the worker's critical path.

The recorder is the only writer of the exporter's series. Hooks call it from the
worker's event loop, from the executor thread that runs ``load_fnc`` and from the
SDK's log-forwarding thread. A hook only appends the event, stamped with its time, to a
queue (a deque append, well under a microsecond); the metric updates happen when the
queue is drained: before every collection of the registry, so a scrape sees every event
that happened before it, and every second from the exporter's own thread, so the queue
stays short. Measured in a worker answering offers, doing the updates inline cost
tens of microseconds per offer on the path between offer and answer (benchmarks/).

One drainer at a time applies the events in order, so the per-job bookkeeping needs no
other lock; it is bounded in size: a worker that runs for months must not grow memory.
"""

from __future__ import annotations

import math
import numbers
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from . import metrics
from .safety import ErrorSink

K = TypeVar("K")
V = TypeVar("V")

MAX_TRACKED_JOBS = 10_000
MAX_QUEUED_EVENTS = 50_000  # drained inline past this, should the periodic drain ever stall
_YIELD_EVERY = 256  # events applied (~0.5 ms) between GIL releases: a long drain never holds
# up the worker for long; time.sleep(0) costs ~75 us of wall time, so not after every event

# the fixed values of the catalogue's extra labels, so that no label grows with user input
FIXED_LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "job_requests_rejected": metrics.REJECT_REASONS,
    "load_fnc_errors": metrics.LOAD_FNC_ERRORS,
    "jobs_failed": metrics.JOB_FAILURE_REASONS,
    "exporter_errors": metrics.EXPORTER_COMPONENTS,
    "job_process_failures": metrics.JOB_PROCESS_FAILURE_REASONS,
    "exporter_hooks_attached": metrics.EXPORTER_HOOKS,
}


# gauges read from the worker at scrape time once it runs; unknown (NaN) before
LIVE_GAUGES = ("worker_load_threshold_ratio", "worker_effective_load_ratio", "worker_draining",
               "worker_active_jobs", "job_processes", "job_processes_resident_memory_bytes",
               "job_process_max_resident_memory_bytes", "job_memory_limit_bytes")


class BoundedDict(OrderedDict, Generic[K, V]):  # type: ignore[type-arg]  # typed by Generic
    """Insertion-ordered dict that forgets its oldest entries past ``limit``."""

    def __init__(self, limit: int = MAX_TRACKED_JOBS) -> None:
        super().__init__()
        self._limit = limit

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > self._limit:
            self.popitem(last=False)


@dataclass
class RequestState:
    """What the request handler did with one job offer, for labelling the refusal.

    Written only where events are applied, from what each queued event carries: the hooks
    never share it."""

    answer: str | None = None  # "accept" or "reject": the handler's first answer
    ended_without_answer: str | None = None  # "error" or "unanswered"


def _make(spec: metrics.MetricSpec) -> Any:
    """One family of the catalogue, in no registry: ``RecorderCollector`` yields it."""
    labels = list(spec.all_labels)
    if spec.kind == "gauge":
        return Gauge(spec.name, spec.help, labels, registry=None)
    if spec.kind == "counter":
        return Counter(spec.name, spec.help, labels, registry=None)
    if spec.kind == "histogram":
        return Histogram(spec.name, spec.help, labels, buckets=spec.buckets, registry=None)
    # Info appends ``_info`` itself; its values are labels, the agent name included.
    return Info(spec.name, spec.help, [metrics.AGENT_LABEL], registry=None)


class Recorder:
    """Holds the metric objects of one worker and the per-job state behind them."""

    def __init__(
        self,
        registry: CollectorRegistry,
        errors: ErrorSink,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._errors = errors
        self._clock = clock
        self._events: deque[tuple[Callable[..., None], str, tuple[Any, ...]]] = deque()
        self._drain_lock = threading.Lock()
        self._registry = registry
        self._families = {spec.short: _make(spec) for spec in metrics.CATALOGUE}
        # one collector for every family (the ProcessCollector pattern): collecting it applies
        # the queued events first, whatever else the registry holds and in whatever order
        self._collector = RecorderCollector(self.drain, list(self._families.values()))
        registry.register(self._collector)
        self._agent = ""
        # labelled children by (metric, labels): ``labels()`` validates and locks on every
        # call, which showed up in the per-offer cost (benchmarks/); the set is bounded
        # by the catalogue's fixed label values
        self._children: dict[tuple[str, ...], Any] = {}
        self._received_at: BoundedDict[str, float] = BoundedDict()
        self._requests: BoundedDict[str, RequestState] = BoundedDict()
        self._awaiting_assignment: BoundedDict[str, float] = BoundedDict()
        self._launched_at: BoundedDict[str, float] = BoundedDict()
        self._failed: BoundedDict[str, bool] = BoundedDict()
        self._known_jobs: BoundedDict[str, bool] = BoundedDict()
        self._ended: BoundedDict[str, bool] = BoundedDict()
        self._answered: BoundedDict[str, bool] = BoundedDict()  # first answer per job
        self._assigned: BoundedDict[str, bool] = BoundedDict()
        self._full: bool | None = None
        self._last_status_at: float | None = None
        self._hooks: dict[str, bool] = {hook: False for hook in metrics.EXPORTER_HOOKS}
        self._cloud_load_defaults = False
        self._bound = False
        self._closed = False
        #: whether an ``available=false`` sent without the handler running is the SDK's own
        #: refusal (full/draining); set from ``sdk.REFUSES_WHEN_FULL`` by the exporter
        self.refuses_when_full = True
        errors.bind(self._count_exporter_error)

    # -- setup ---------------------------------------------------------------------
    def bind(self, agent_name: str, info: dict[str, str],
             live: dict[str, Callable[[], float]]) -> None:
        """Create every labelled series: at ``instrument()``, and again when the worker runs.

        ``live`` maps gauge names to readers evaluated at scrape time, off the worker's
        loop; each reader is guarded so a failing one yields NaN, never a failed scrape.
        Live gauges without a reader are NaN (unknown until the worker runs). Should the
        agent name differ at run time, the series of the old name are removed.
        """
        with self._drain_lock:
            self._bind(agent_name, info, live)

    def _bind(self, agent_name: str, info: dict[str, str],
              live: dict[str, Callable[[], float]]) -> None:
        fam = self._families
        if self._bound and agent_name != self._agent:
            for family in fam.values():
                family.clear()
        self._agent = agent_name
        self._children.clear()
        # every series exists from the start, at 0, so rate() and alerts see the first event
        for spec in metrics.CATALOGUE:
            if spec.kind == "info":
                fam[spec.short].labels(agent_name).info(info)
            elif not spec.labels:
                fam[spec.short].labels(agent_name)
            else:
                for value in FIXED_LABEL_VALUES[spec.short]:
                    fam[spec.short].labels(agent_name, value)
        for short in LIVE_GAUGES:
            fam[short].labels(agent_name).set(math.nan)
        for short, reader in live.items():
            fam[short].labels(agent_name).set_function(self._guarded_reader(short, reader))
        if "worker_load_ratio" not in live:
            fam["worker_load_ratio"].labels(agent_name).set(math.nan)
        for hook, attached in self._hooks.items():
            fam["exporter_hooks_attached"].labels(agent_name, hook).set(1 if attached else 0)
        fam["worker_cloud_load_defaults"].labels(agent_name).set(
            1 if self._cloud_load_defaults else 0)
        self._bound = True

    def set_hook(self, hook: str, attached: bool) -> None:
        """Record whether one hook is attached (rare: at instrument() and at run)."""
        with self._drain_lock:
            self._hooks[hook] = attached
            if self._bound:
                self._series("exporter_hooks_attached", hook).set(1 if attached else 0)

    def set_cloud_load_defaults(self, on_cloud: bool) -> None:
        with self._drain_lock:
            self._cloud_load_defaults = on_cloud
            if self._bound:
                self._series("worker_cloud_load_defaults").set(1 if on_cloud else 0)

    def _guarded_reader(self, short: str, reader: Callable[[], float]) -> Callable[[], float]:
        def read() -> float:
            try:
                return float(reader())
            except Exception:
                self._errors.report("gauge", detail=short)
                return math.nan

        return read

    def _series(self, short: str, *labels: str) -> Any:
        key = (short, self._agent, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._families[short].labels(self._agent, *labels)
        return child

    def _count_exporter_error(self, component: str) -> None:
        if component not in metrics.EXPORTER_COMPONENTS:
            component = "other"
        self._families["exporter_errors"].labels(self._agent, component).inc()

    # -- the queue -------------------------------------------------------------------
    def _post(self, apply: Callable[..., None], component: str, args: tuple[Any, ...]) -> None:
        if self._closed:
            return
        events = self._events
        events.append((apply, component, args))
        if len(events) > MAX_QUEUED_EVENTS:
            self.drain()

    def drain(self) -> None:
        """Apply every queued event, in order; a failing one is counted, never raised."""
        with self._drain_lock:
            pop, report, release = self._events.popleft, self._errors.report, time.sleep
            applied = 0
            while True:
                try:
                    apply, component, args = pop()
                except IndexError:
                    return
                try:
                    apply(*args)
                except Exception:
                    report(component)
                applied += 1
                if applied % _YIELD_EVERY == 0:
                    release(0)

    @property
    def queued(self) -> int:
        return len(self._events)

    def close(self) -> None:
        """Apply what is queued and take no event after it (``Exporter.close()``)."""
        self._closed = True
        self.drain()

    @property
    def closed(self) -> bool:
        return self._closed

    def unregister(self) -> None:
        """Take this recorder's metrics out of the registry (a user's, on ``close()``)."""
        try:
            self._registry.unregister(self._collector)
        except KeyError:  # not registered (any more)
            pass

    # -- hooks: called on the worker's path, they only queue -----------------------------
    def request_received(self, job_id: str) -> None:
        self._post(self._request_received, "wire", (job_id, self._clock()))

    def handler_started(self, job_id: str) -> None:
        self._post(self._handler_started, "request_fnc", (job_id,))

    def handler_answered(self, job_id: str, answer: str) -> None:
        """The handler's first ``accept()`` or ``reject()``, queued before the SDK sends it."""
        self._post(self._handler_answered, "request_fnc", (job_id, answer))

    def handler_ended(self, job_id: str, outcome: str) -> None:
        """The handler raised ("error") or returned ("unanswered") without answering."""
        self._post(self._handler_ended, "request_fnc", (job_id, outcome))

    def answer_sent(self, job_id: str, available: bool, draining: bool) -> None:
        self._post(self._answer_sent, "wire", (job_id, available, draining, self._clock()))

    def assignment_timed_out(self, job_id: str) -> None:
        self._post(self._assignment_timed_out, "assignment_timeout", (job_id,))

    def assignment_received(self, job_id: str) -> None:
        self._post(self._assignment_received, "wire", (job_id,))

    def job_running(self, job_id: str) -> None:
        self._post(self._job_running, "wire", (job_id, self._clock()))

    def job_ended(self, job_id: str, process_failed: bool) -> None:
        self._post(self._job_ended, "wire", (job_id, process_failed, self._clock()))

    def entrypoint_failed(self, job_id: str) -> None:
        self._post(self._entrypoint_failed, "job_events", (job_id,))

    def process_failed(self, reason: str, job_id: str | None) -> None:
        self._post(self._process_failed, "job_events", (reason, job_id))

    def status_reported(self, full: bool) -> None:
        self._post(self._status_reported, "wire", (full, self._clock()))

    def registered(self) -> None:
        self._post(self._registered, "wire", ())

    def disconnected(self) -> None:
        self._post(self._disconnected, "connection", (self._clock(),))

    def load_sampled(self, value: object, duration: float) -> None:
        self._post(self._load_sampled, "load_fnc", (value, duration))

    def load_fnc_raised(self, duration: float) -> None:
        self._post(self._load_fnc_raised, "load_fnc", (duration,))

    # -- offers and answers, applied -----------------------------------------------------
    def _request_received(self, job_id: str, now: float) -> None:
        self._received_at[job_id] = now
        self._series("job_requests").inc()

    def _handler_started(self, job_id: str) -> None:
        self._requests[job_id] = RequestState()

    def _handler_answered(self, job_id: str, answer: str) -> None:
        state = self._requests.get(job_id)
        if state is not None and state.answer is None:
            state.answer = answer

    def _handler_ended(self, job_id: str, outcome: str) -> None:
        state = self._requests.get(job_id)
        if state is not None and state.answer is None:
            state.ended_without_answer = outcome

    def _answer_sent(self, job_id: str, available: bool, draining: bool, now: float) -> None:
        if job_id in self._answered:
            # a handler that answered twice (reject() then accept(), accept() twice): both
            # go out, the server acts on the first, and so do the counters
            return
        self._answered[job_id] = available
        received = self._received_at.get(job_id)
        state = self._requests.get(job_id)
        if available:
            self._awaiting_assignment[job_id] = now
        else:
            self._received_at.pop(job_id, None)
        if received is not None:
            self._series("job_request_answer_duration_seconds").observe(max(0.0, now - received))
        if available:
            self._series("job_requests_accepted").inc()
            self._series("worker_pending_assignments").set(len(self._awaiting_assignment))
            return
        self._series("job_requests_rejected",
                     _refusal_reason(state, draining, self.refuses_when_full)).inc()

    def _assignment_timed_out(self, job_id: str) -> None:
        if job_id in self._answered and job_id not in self._awaiting_assignment:
            # a second answer's wait: the job was refused or already assigned by the first
            return
        self._awaiting_assignment.pop(job_id, None)
        self._received_at.pop(job_id, None)
        self._series("assignment_timeouts").inc()
        self._series("worker_pending_assignments").set(len(self._awaiting_assignment))

    def _assignment_received(self, job_id: str) -> None:
        """Expected only while the worker still waits: a late one is never launched."""
        expected = self._awaiting_assignment.pop(job_id, None) is not None
        if expected:
            self._assigned[job_id] = True
        self._series("job_assignments" if expected else "job_assignments_unknown").inc()
        self._series("worker_pending_assignments").set(len(self._awaiting_assignment))

    # -- job lifecycle, applied ----------------------------------------------------------
    def _job_running(self, job_id: str, now: float) -> None:
        if job_id in self._launched_at:
            return
        self._launched_at[job_id] = now
        self._known_jobs[job_id] = True
        received = self._received_at.pop(job_id, None)
        self._requests.pop(job_id, None)
        self._series("jobs_launched").inc()
        if received is not None:
            self._series("job_dispatch_latency_seconds").observe(max(0.0, now - received))

    def _job_ended(self, job_id: str, process_failed: bool, now: float) -> None:
        if job_id in self._ended:
            return
        self._ended[job_id] = True
        launched = self._launched_at.pop(job_id, None)
        self._series("jobs_finished").inc()
        if launched is not None:
            self._series("job_duration_seconds").observe(max(0.0, now - launched))
        if process_failed:
            self._job_failed(job_id, "process_exit")

    def _entrypoint_failed(self, job_id: str) -> None:
        # several workers may share a process (and its log records): count only our jobs
        if job_id in self._known_jobs:
            self._job_failed(job_id, "entrypoint_error")

    def _process_failed(self, reason: str, job_id: str | None) -> None:
        """A job executor failure the SDK only logged; a job's counts only for our jobs."""
        if reason not in metrics.JOB_PROCESS_FAILURE_REASONS:
            return
        if job_id is not None and job_id not in self._assigned:
            return  # another worker in this process got that job
        self._series("job_process_failures", reason).inc()

    def _job_failed(self, job_id: str, reason: str) -> None:
        """Counts a job once even when both its entrypoint raised and its process died."""
        if job_id in self._failed:
            return
        self._failed[job_id] = True
        self._series("jobs_failed", reason).inc()

    # -- worker state, applied -----------------------------------------------------------
    def _status_reported(self, full: bool, now: float) -> None:
        was_full, last = self._full, self._last_status_at
        self._full, self._last_status_at = full, now
        if was_full and last is not None:
            self._series("worker_full_seconds").inc(max(0.0, now - last))
        if full and not was_full:
            self._series("worker_full_transitions").inc()
        self._series("worker_full").set(1 if full else 0)

    def _registered(self) -> None:
        self._series("worker_registrations").inc()
        self._series("worker_registered").set(1)

    def _disconnected(self, now: float) -> None:
        """The server no longer sees a status: the time until the next one is not full time."""
        if self._full and self._last_status_at is not None:
            self._series("worker_full_seconds").inc(max(0.0, now - self._last_status_at))
        self._last_status_at = None
        self._series("worker_registered").set(0)

    # -- load, applied -------------------------------------------------------------------
    def _load_sampled(self, value: object, duration: float) -> None:
        self._series("load_fnc_duration_seconds").observe(duration)
        # a plain float or int is the common case; the ABC check below costs more
        if type(value) is not float and type(value) is not int and (
                isinstance(value, bool) or not isinstance(value, numbers.Real)):
            self._series("load_fnc_errors", "non_numeric").inc()
            self._series("worker_load_ratio").set(math.nan)
            return
        try:
            load = float(value)
        except OverflowError:  # an int beyond any float, e.g. 10**400
            load = math.inf if value > 0 else -math.inf  # type: ignore[operator]  # an int here
        self._series("worker_load_ratio").set(load)
        if math.isnan(load):
            self._series("load_fnc_errors", "nan").inc()
            return
        if load < 0 or load > 1:
            self._series("load_fnc_errors", "out_of_range").inc()
        if abs(load) <= metrics.MAX_OBSERVED_LOAD:  # one 1e308 must not own the histogram's sum
            self._series("worker_load_samples_ratio").observe(load)

    def _load_fnc_raised(self, duration: float) -> None:
        self._series("load_fnc_duration_seconds").observe(duration)
        self._series("load_fnc_errors", "exception").inc()


class DrainThread:
    """Drains a recorder every ``interval`` seconds, so that events never pile up between
    scrapes (or when nobody scrapes at all)."""

    def __init__(self, recorder: Recorder, errors: ErrorSink, interval: float = 1.0) -> None:
        self._recorder = recorder
        self._errors = errors
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="livekit-agents-exporter-drain",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._recorder.drain()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._errors.guard("other"):
                self._recorder.drain()


class RecorderCollector(Collector):
    """The recorder's families as one collector: ``collect()`` applies the queued events, then
    yields every family of the catalogue, so a scrape sees every event before it."""

    def __init__(self, drain: Callable[[], Any], families: list[Any]) -> None:
        self._drain = drain
        self._families = families

    def describe(self) -> Iterable[Metric]:
        # the names, for the registry's duplicate check and name[] filtering, without a drain
        for family in self._families:
            yield from family.describe()

    def collect(self) -> Iterable[Metric]:
        self._drain()
        for family in self._families:
            yield from family.collect()


def _refusal_reason(state: RequestState | None, draining: bool, sdk_refuses: bool) -> str:
    """Why an ``available=false`` went out; the wire alone cannot tell."""
    if state is None:
        # The handler never ran: an SDK that refuses by itself (1.4.2+) did, or, on an older
        # one, the request_fnc hook is off and the reason is unknown
        if sdk_refuses:
            return "draining" if draining else "full"
        return "unanswered"
    if state.answer == "reject":
        return "on_request"
    return state.ended_without_answer or "unanswered"
