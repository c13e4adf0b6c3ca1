"""A synthetic fleet: realistic exposition of every catalogue metric, moving over time.

Each worker is a ``prometheus_client`` registry built from ``metrics.CATALOGUE``, served
on its own loopback port (one scrape target per worker, like real worker processes),
and driven by a small simulation of what a LiveKit Agents worker goes through: load
samples, job offers answered or refused (by reason), assignments and assignment
timeouts, jobs running, ending and failing, full/draining states and job process
memory. It stands in for a real instrumented fleet until the simulator lands; the
dashboard tests only see the scrape targets (see ``dash_live.exposition_source``).
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

from livekit_agents_exporter import metrics as m
from livekit_agents_exporter.version import __version__

STEP_S = 0.25
MB = 1024 * 1024


@dataclass(frozen=True)
class Profile:
    """How one simulated worker behaves."""

    agent_name: str
    base_load: float
    threshold: float = 0.7  # math.inf: dev mode
    draining: bool = False
    offers_per_step: float = 0.5
    process_executor: bool = True
    memory_limit_mb: int = 512
    per_job_load: float = 0.04


# target labels (what Prometheus attaches) -> workers
DEFAULT_GROUPS: tuple[tuple[dict[str, str], tuple[Profile, ...]], ...] = (
    ({"cluster": "eu-west", "namespace": "voice"}, (
        Profile("inbound-sales", 0.30),
        Profile("inbound-sales", 0.60),                 # often full: flaps at its threshold
        Profile("inbound-sales", 0.20, draining=True),
        Profile("outbound-survey", 0.72, threshold=0.75),  # above target_load: wins no job
        Profile("outbound-survey", 0.90, threshold=0.75),  # always full
    )),
    ({"cluster": "us-east", "namespace": "voice"}, (
        Profile("", 0.20, threshold=math.inf, process_executor=False, memory_limit_mb=0),
        Profile("", 0.40),                              # automatic dispatch (no agent_name)
    )),
)


def _collectors(registry: CollectorRegistry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in m.CATALOGUE:
        labels = list(spec.all_labels)
        if spec.kind == "gauge":
            out[spec.short] = Gauge(spec.name, spec.help, labels, registry=registry)
        elif spec.kind == "counter":
            out[spec.short] = Counter(spec.name, spec.help, labels, registry=registry)
        elif spec.kind == "histogram":
            out[spec.short] = Histogram(spec.name, spec.help, labels, buckets=spec.buckets,
                                        registry=registry)
        else:
            out[spec.short] = Info(spec.name, spec.help, [m.AGENT_LABEL], registry=registry)
    return out


@dataclass
class _Pending:
    received_at: float
    assign_at: float
    times_out: bool


@dataclass
class Worker:
    profile: Profile
    seed: int
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.c = _collectors(self.registry)
        self.now = 0.0
        self.active = 0
        self.pending: list[_Pending] = []
        self.late: list[float] = []  # when a timed-out job's assignment arrives anyway
        self.was_full = False
        self.server: Any = None
        agent = self.profile.agent_name
        # labelled children exist from the start, at 0, like the exporter's (except
        # exporter_errors, whose component appears with its first error)
        for reason in m.REJECT_REASONS:
            self._s("job_requests_rejected", reason)
        for reason in m.JOB_FAILURE_REASONS:
            self._s("jobs_failed", reason)
        for error in m.LOAD_FNC_ERRORS:
            self._s("load_fnc_errors", error)
        self.c["worker"].labels(agent).info({
            "worker_type": "room", "sdk_version": "1.8.9", "exporter_version": __version__})
        self._s("worker_load_threshold_ratio").set(self.profile.threshold)
        self._s("worker_registered").set(1)
        self._s("worker_registrations").inc()
        self._s("worker_draining").set(1 if self.profile.draining else 0)
        self._s("job_memory_limit_bytes").set(self.profile.memory_limit_mb * MB)

    def _s(self, short: str, *labels: str) -> Any:
        return self.c[short].labels(self.profile.agent_name, *labels)

    # --- one simulation step ------------------------------------------------------

    def _sample_load(self) -> float:
        p, rng = self.profile, self.rng
        load = 0.0 if p.draining else p.base_load + p.per_job_load * self.active + rng.gauss(0, 0.04)
        load = min(max(load, 0.0), 1.0)
        self._s("worker_load_ratio").set(load)
        self._s("worker_load_samples_ratio").observe(load)
        self._s("load_fnc_duration_seconds").observe(rng.lognormvariate(math.log(0.002), 0.8))
        if rng.random() < 0.01:
            self._s("load_fnc_errors", rng.choice(m.LOAD_FNC_ERRORS)).inc()
        if rng.random() < 0.002:
            self._s("exporter_errors", "load_probe").inc()
        return load

    def _effective(self, load: float) -> float:
        eff = load + len(self.pending) * self.profile.per_job_load * 2
        self._s("worker_effective_load_ratio").set(eff)
        return eff

    def _answer(self, seconds: float) -> None:
        self._s("job_request_answer_duration_seconds").observe(seconds)

    def _offer(self, full: bool) -> None:
        rng = self.rng
        self._s("job_requests").inc()
        if self.profile.draining:
            self._s("job_requests_rejected", "draining").inc()
            self._answer(rng.uniform(0.0005, 0.003))
            return
        if full:
            self._s("job_requests_rejected", "full").inc()
            self._answer(rng.uniform(0.0005, 0.003))
            return
        r = rng.random()
        if r < 0.80:
            self._s("job_requests_accepted").inc()
            self._answer(4.0 if rng.random() < 0.02 else rng.lognormvariate(math.log(0.04), 1.0))
            self.pending.append(_Pending(self.now, self.now + rng.uniform(0.05, 0.8),
                                         times_out=rng.random() < 0.08))
        else:
            reason = "on_request" if r < 0.88 else "unanswered" if r < 0.94 else "error"
            self._s("job_requests_rejected", reason).inc()
            self._answer(rng.lognormvariate(math.log(0.02), 1.0))

    def _assignments(self) -> None:
        rng = self.rng
        due = [p for p in self.pending if p.assign_at <= self.now]
        self.pending = [p for p in self.pending if p.assign_at > self.now]
        for p in due:
            if p.times_out:
                self._s("assignment_timeouts").inc()
                self.late.append(self.now + rng.uniform(0.2, 1.0))
                continue
            self._s("job_assignments").inc()
            self._s("jobs_launched").inc()
            self._s("job_dispatch_latency_seconds").observe(
                self.now - p.received_at + rng.uniform(0.01, 0.3))
            self.active += 1
        arrived = [t for t in self.late if t <= self.now]
        self.late = [t for t in self.late if t > self.now]
        if arrived:
            self._s("job_assignments_unknown").inc(len(arrived))

    def _job_ends(self) -> None:
        rng = self.rng
        for _ in range(self.active):
            if rng.random() < 0.08:
                self.active -= 1
                self._s("jobs_finished").inc()
                self._s("job_duration_seconds").observe(rng.lognormvariate(math.log(90), 1.2))
                if rng.random() < 0.12:
                    self._s("jobs_failed", rng.choice(m.JOB_FAILURE_REASONS)).inc()

    def _memory(self) -> None:
        rng = self.rng
        procs = self.active + 1 if self.profile.process_executor else 0
        biggest = (180 + rng.uniform(0, 120)) * MB if procs else 0
        self._s("job_processes").set(procs)
        self._s("job_processes_resident_memory_bytes").set(
            procs * 150 * MB + rng.uniform(0, 40) * MB if procs else 0)
        self._s("job_process_max_resident_memory_bytes").set(biggest)

    def step(self, dt: float = STEP_S) -> None:
        self.now += dt
        load = self._sample_load()
        full = self.profile.draining or self._effective(load) >= self.profile.threshold
        if full and not self.was_full:
            self._s("worker_full_transitions").inc()
        if full:
            self._s("worker_full_seconds").inc(dt)
        self.was_full = full
        self._s("worker_full").set(1 if full else 0)
        if self.rng.random() < self.profile.offers_per_step:
            self._sample_load()  # the SDK samples again before answering an offer
            self._offer(full)
        self._assignments()
        self._job_ends()
        self._s("worker_active_jobs").set(self.active)
        self._s("worker_pending_assignments").set(len(self.pending))
        self._memory()


class SyntheticFleet:
    """Workers served on loopback and stepped by one background thread.

    ``targets()`` gives, per group, the target labels and the ``host:port`` of its
    workers. Use as a context manager.
    """

    def __init__(self, groups: tuple[tuple[dict[str, str], tuple[Profile, ...]], ...]
                 = DEFAULT_GROUPS, seed: int = 7, warmup_steps: int = 8) -> None:
        self.groups = [(labels, [Worker(p, seed * 1000 + i) for i, p in enumerate(profiles)])
                       for labels, profiles in groups]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="synthetic-fleet", daemon=True)
        self._warmup = warmup_steps

    @property
    def workers(self) -> list[Worker]:
        return [w for _, ws in self.groups for w in ws]

    def start(self) -> SyntheticFleet:
        for w in self.workers:
            for _ in range(self._warmup):
                w.step()
            w.server, _ = start_http_server(0, addr="127.0.0.1", registry=w.registry)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for w in self.workers:
            if w.server is not None:
                w.server.shutdown()
                w.server.server_close()

    def __enter__(self) -> SyntheticFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(STEP_S):
            for w in self.workers:
                w.step()

    def targets(self) -> list[tuple[dict[str, str], list[str]]]:
        return [(labels, [f"127.0.0.1:{w.server.server_port}" for w in ws])
                for labels, ws in self.groups]
