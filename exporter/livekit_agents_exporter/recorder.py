"""Turns observed worker events into metric updates.

The recorder is the only writer of the exporter's series. Hooks call it from the
worker's event loop, from the executor thread that runs ``load_fnc`` and from the
SDK's log-forwarding thread, so its per-job bookkeeping is guarded by a lock and
bounded in size: a worker that runs for months must not grow memory here.
"""

from __future__ import annotations

import math
import numbers
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from . import metrics as m
from .safety import ErrorSink

K = TypeVar("K")
V = TypeVar("V")

MAX_TRACKED_JOBS = 10_000

# the fixed values of the catalogue's extra labels, so that no label grows with user input
FIXED_LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "job_requests_rejected": m.REJECT_REASONS,
    "load_fnc_errors": m.LOAD_FNC_ERRORS,
    "jobs_failed": m.JOB_FAILURE_REASONS,
    "exporter_errors": m.EXPORTER_COMPONENTS,
}


class BoundedDict(OrderedDict, Generic[K, V]):  # type: ignore[type-arg]
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
    """What the request handler did with one job offer, for labelling the refusal."""

    answer: str | None = None  # "accept" or "reject", set when the handler answers
    ended_without_answer: str | None = None  # "error" or "unanswered"


def _make(spec: m.MetricSpec, registry: CollectorRegistry) -> Any:
    labels = list(spec.all_labels)
    if spec.kind == "gauge":
        return Gauge(spec.name, spec.help, labels, registry=registry)
    if spec.kind == "counter":
        return Counter(spec.name, spec.help, labels, registry=registry)
    if spec.kind == "histogram":
        return Histogram(spec.name, spec.help, labels, buckets=spec.buckets, registry=registry)
    # Info appends ``_info`` itself; its values are labels, the agent name included.
    return Info(spec.name, spec.help, [m.AGENT_LABEL], registry=registry)


class Recorder:
    """Holds the metric objects of one worker and the per-job state behind them."""

    def __init__(
        self,
        registry: CollectorRegistry,
        errors: ErrorSink,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._families = {spec.short: _make(spec, registry) for spec in m.CATALOGUE}
        self._errors = errors
        self._clock = clock
        self._lock = threading.Lock()
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
        self._full: bool | None = None
        self._last_status_at: float | None = None
        errors.bind(self._count_exporter_error)

    # -- setup ---------------------------------------------------------------------
    def bind(self, agent_name: str, info: dict[str, str], live: dict[str, Callable[[], float]]) -> None:
        """Create the labelled series once the agent name is known (at worker start).

        ``live`` maps gauge names to readers evaluated at scrape time, off the worker's
        loop; each reader is guarded so a failing one yields NaN, never a failed scrape.
        """
        self._agent = agent_name
        self._children.clear()
        fam = self._families
        # every series exists from the start, at 0, so rate() and alerts see the first event
        for spec in m.CATALOGUE:
            if spec.kind == "info":
                fam[spec.short].labels(agent_name).info(info)
            elif not spec.labels:
                fam[spec.short].labels(agent_name)
            else:
                for value in FIXED_LABEL_VALUES[spec.short]:
                    fam[spec.short].labels(agent_name, value)
        for short, reader in live.items():
            fam[short].labels(agent_name).set_function(self._guarded_reader(short, reader))
        fam["worker_load_ratio"].labels(agent_name).set(math.nan)

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
        if component not in m.EXPORTER_COMPONENTS:
            component = "other"
        self._families["exporter_errors"].labels(self._agent, component).inc()

    # -- offers and answers --------------------------------------------------------
    def request_received(self, job_id: str) -> None:
        with self._lock:
            self._received_at[job_id] = self._clock()
        self._series("job_requests").inc()

    def handler_started(self, job_id: str) -> RequestState:
        state = RequestState()
        with self._lock:
            self._requests[job_id] = state
        return state

    def answer_sent(self, job_id: str, available: bool, draining: bool) -> None:
        now = self._clock()
        with self._lock:
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
        self._series("job_requests_rejected", _refusal_reason(state, draining)).inc()

    def assignment_timed_out(self, job_id: str) -> None:
        with self._lock:
            self._awaiting_assignment.pop(job_id, None)
            self._received_at.pop(job_id, None)
            pending = len(self._awaiting_assignment)
        self._series("assignment_timeouts").inc()
        self._series("worker_pending_assignments").set(pending)

    def assignment_received(self, job_id: str) -> None:
        """Expected only while the worker still waits: a late one is never launched."""
        with self._lock:
            expected = self._awaiting_assignment.pop(job_id, None) is not None
            pending = len(self._awaiting_assignment)
        self._series("job_assignments" if expected else "job_assignments_unknown").inc()
        self._series("worker_pending_assignments").set(pending)

    # -- job lifecycle -------------------------------------------------------------
    def job_running(self, job_id: str) -> None:
        now = self._clock()
        with self._lock:
            if job_id in self._launched_at:
                return
            self._launched_at[job_id] = now
            self._known_jobs[job_id] = True
            received = self._received_at.pop(job_id, None)
            self._requests.pop(job_id, None)
        self._series("jobs_launched").inc()
        if received is not None:
            self._series("job_dispatch_latency_seconds").observe(max(0.0, now - received))

    def owns_job(self, job_id: str) -> bool:
        """Whether this worker launched the job (several workers may share a process)."""
        with self._lock:
            return job_id in self._known_jobs

    def job_ended(self, job_id: str, process_failed: bool) -> None:
        now = self._clock()
        with self._lock:
            if job_id in self._ended:
                return
            self._ended[job_id] = True
            launched = self._launched_at.pop(job_id, None)
        self._series("jobs_finished").inc()
        if launched is not None:
            self._series("job_duration_seconds").observe(max(0.0, now - launched))
        if process_failed:
            self.job_failed(job_id, "process_exit")

    def job_failed(self, job_id: str, reason: str) -> None:
        """Counts a job once even when both its entrypoint raised and its process died."""
        with self._lock:
            if job_id in self._failed:
                return
            self._failed[job_id] = True
        self._series("jobs_failed", reason).inc()

    # -- worker state --------------------------------------------------------------
    def status_reported(self, full: bool) -> None:
        now = self._clock()
        with self._lock:
            was_full, last = self._full, self._last_status_at
            self._full, self._last_status_at = full, now
        if was_full and last is not None:
            self._series("worker_full_seconds").inc(max(0.0, now - last))
        if full and not was_full:
            self._series("worker_full_transitions").inc()
        self._series("worker_full").set(1 if full else 0)

    def registered(self) -> None:
        self._series("worker_registrations").inc()
        self._series("worker_registered").set(1)

    def disconnected(self) -> None:
        self._series("worker_registered").set(0)

    # -- load ----------------------------------------------------------------------
    def load_sampled(self, value: object, duration: float) -> None:
        self._series("load_fnc_duration_seconds").observe(duration)
        # a plain float or int is the common case; the ABC check below costs more
        if type(value) is not float and type(value) is not int and (
                isinstance(value, bool) or not isinstance(value, numbers.Real)):
            self._series("load_fnc_errors", "non_numeric").inc()
            self._series("worker_load_ratio").set(math.nan)
            return
        load = float(value)
        self._series("worker_load_ratio").set(load)
        if math.isnan(load):
            self._series("load_fnc_errors", "nan").inc()
            return
        if load < 0 or load > 1:
            self._series("load_fnc_errors", "out_of_range").inc()
        if math.isfinite(load):
            self._series("worker_load_samples_ratio").observe(load)

    def load_fnc_raised(self, duration: float) -> None:
        self._series("load_fnc_duration_seconds").observe(duration)
        self._series("load_fnc_errors", "exception").inc()


def _refusal_reason(state: RequestState | None, draining: bool) -> str:
    """Why an ``available=false`` went out; the wire alone cannot tell (DOMAIN.md)."""
    if state is None:
        # The handler never ran: the 1.8 SDK refused the offer by itself.
        return "draining" if draining else "full"
    if state.answer == "reject":
        return "on_request"
    return state.ended_without_answer or "unanswered"
