"""Micro benchmarks: what each hook costs per call, in-process, without a worker.

Every figure is a median over ``repeats`` rounds; within a round the bare and the hooked
variant run back to back on the same inputs, so drift on a shared machine hits both.

- ``load_fnc``: the user's load function called bare and through ``ObservedLoadFnc``,
  and the SDK's own way of calling it (signature inspection and an executor hop), which
  is what every call costs the worker anyway.
- recorder methods: each step of a job's bookkeeping, on distinct job ids (the hook's
  call, which queues, and applying the queued event, which the drain does), with the
  per-job dictionaries already at their bound (a worker that has run for a while), next
  to one bare ``Counter.inc()``.
- hooks per offer: the wire taps, the request-handler wrapper and the load_fnc wrapper
  on a stub worker, minus the same calls on an untapped stub: the exporter's whole cost
  for one accepted job and for one offer refused as full.
- memory: bytes the recorder holds (tracemalloc) once its per-job bookkeeping is full.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import time
import tracemalloc
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from livekit.protocol import agent as proto
from prometheus_client import CollectorRegistry, Counter, disable_created_metrics

from harness import median
from livekit_agents_exporter import recorder as recorder_mod
from livekit_agents_exporter import sdk
from livekit_agents_exporter.hooks import Hooks
from livekit_agents_exporter.load_probe import ObservedLoadFnc
from livekit_agents_exporter.recorder import Recorder
from livekit_agents_exporter.request_probe import ObservedRequestFnc
from livekit_agents_exporter.safety import ErrorSink
from livekit_agents_exporter.sdk import WorkerView
from livekit_agents_exporter.synthetic import SlotLoad
from livekit_agents_exporter.wire_tap import WireTap

LIVE = ("worker_load_threshold_ratio", "worker_effective_load_ratio", "worker_draining",
        "worker_active_jobs", "job_processes", "job_processes_resident_memory_bytes",
        "job_process_max_resident_memory_bytes", "job_memory_limit_bytes")


def new_recorder() -> Recorder:
    disable_created_metrics()
    rec = Recorder(CollectorRegistry(), ErrorSink())
    rec.bind("bench", {"worker_type": "JT_ROOM", "sdk_version": "x", "exporter_version": "x"},
             {name: (lambda: 0.0) for name in LIVE})
    return rec


def _per_call_ns(fn: Callable[[], None], calls: int) -> float:
    gc.disable()
    try:
        start = time.perf_counter_ns()
        fn()
        return (time.perf_counter_ns() - start) / calls
    finally:
        gc.enable()


class _Ids:
    """Fresh job ids for every round, so that no call takes a shortcut for a seen job."""

    def __init__(self) -> None:
        self.n = 0

    def take(self, count: int) -> list[str]:
        ids = [f"AJ_{self.n + i:012d}" for i in range(count)]
        self.n += count
        return ids


# --- load_fnc -----------------------------------------------------------------------------

def bench_load_fnc(calls: int, repeats: int) -> dict[str, Any]:
    rec = new_recorder()
    worker = SimpleNamespace(active_jobs=[object()] * 8)
    slot = SlotLoad(64)

    def constant() -> float:
        return 0.25

    variants = {"constant load_fnc": constant, "SlotLoad (synthetic agent)": slot}
    out: dict[str, Any] = {}
    for label, fn in variants.items():
        wrapped = ObservedLoadFnc(fn, rec, ErrorSink())
        takes_worker = label != "constant load_fnc"

        def bare_loop(fn: Any = fn, tw: bool = takes_worker) -> None:
            if tw:
                for _ in range(calls):
                    fn(worker)
            else:
                for _ in range(calls):
                    fn()

        def wrapped_loop(w: Any = wrapped) -> None:
            for _ in range(calls):
                w(worker)

        bare, hooked = [], []
        for _ in range(repeats):
            bare.append(_per_call_ns(bare_loop, calls))
            hooked.append(_per_call_ns(wrapped_loop, calls))
        out[label] = _pair(bare, hooked)

    def slot_load(worker: Any) -> float:  # a plain function: the SDK's cheapest to inspect
        return slot(worker)

    wrapped_slot_load = ObservedLoadFnc(slot_load, rec, ErrorSink())
    # the SDK inspects load_fnc's signature on every call (``_invoke_load_fnc``)
    inspected: dict[str, Any] = {"plain function": slot_load, "callable object": slot}
    if sdk.DEFAULT_LOAD_FNC is not None:
        inspected["the SDK's default (a bound method)"] = sdk.DEFAULT_LOAD_FNC
    inspected["wrapped"] = wrapped_slot_load
    out["signature_ns"] = {
        label: median([_per_call_ns(lambda f=fn: _inspect_loop(f, calls // 10), calls // 10)
                       for _ in range(repeats)])
        for label, fn in inspected.items()}
    out["sdk_call_path"] = _sdk_invoke(slot_load, wrapped_slot_load, worker,
                                       max(200, calls // 20), repeats)
    return out


def _inspect_loop(fn: Any, calls: int) -> None:
    for _ in range(calls):
        list(inspect.signature(fn).parameters.values())


def _sdk_invoke(bare_fn: Any, wrapped_fn: Any, worker: Any, calls: int,
                repeats: int) -> dict[str, float] | None:
    """The SDK's own call of load_fnc, ``AgentServer._invoke_load_fnc`` (1.8): signature
    inspection and executor hop included, for the bare and the wrapped function."""
    bare_call = sdk.sdk_load_call(bare_fn, worker.active_jobs)
    wrapped_call = sdk.sdk_load_call(wrapped_fn, worker.active_jobs)
    if bare_call is None or wrapped_call is None:
        return None

    async def loop_calls(call: Any) -> float:
        start = time.perf_counter_ns()
        for _ in range(calls):
            await call()
        return (time.perf_counter_ns() - start) / calls

    loop = asyncio.new_event_loop()
    try:
        bare, hooked = [], []
        for _ in range(repeats):
            bare.append(loop.run_until_complete(loop_calls(bare_call)))
            hooked.append(loop.run_until_complete(loop_calls(wrapped_call)))
        return _pair(bare, hooked)
    finally:
        loop.close()


# --- recorder methods -----------------------------------------------------------------------

STEPS: tuple[tuple[str, Callable[[Recorder, str], Any]], ...] = (
    ("request_received", lambda r, j: r.request_received(j)),
    ("handler_started", lambda r, j: r.handler_started(j)),
    ("answer_sent (available)", lambda r, j: r.answer_sent(j, True, False)),
    ("assignment_received", lambda r, j: r.assignment_received(j)),
    ("job_running", lambda r, j: r.job_running(j)),
    ("job_ended", lambda r, j: r.job_ended(j, False)),
)


def _lifecycle(rec: Recorder, ids: list[str]) -> None:
    for _, step in STEPS:
        for j in ids:
            step(rec, j)
    rec.drain()


def bench_recorder(calls: int, repeats: int) -> dict[str, Any]:
    rec = new_recorder()
    ids = _Ids()
    _lifecycle(rec, ids.take(recorder_mod.MAX_TRACKED_JOBS + calls))  # dictionaries at the bound
    counter = Counter("bench_bare", "bare counter", ["agent_name"], registry=CollectorRegistry())
    child = counter.labels("bench")

    def bare_loop() -> None:
        for _ in range(calls):
            child.inc()

    calls_of: dict[str, Callable[[list[str]], Any]] = {
        name: (lambda batch, s=step: [s(rec, j) for j in batch]) for name, step in STEPS}
    calls_of["answer_sent (refused as full)"] = lambda batch: [
        rec.answer_sent(j, False, False) for j in batch]
    calls_of["load_sampled"] = lambda batch: [rec.load_sampled(0.4, 2e-5) for _ in batch]
    calls_of["status_reported"] = lambda batch: [rec.status_reported(False) for _ in batch]
    # per method: the hook's own call (it queues, on the worker's path) and applying what it
    # queued (the drain, before a scrape or on the exporter's drain thread)
    queued: dict[str, list[float]] = {name: [] for name in calls_of}
    applied: dict[str, list[float]] = {name: [] for name in calls_of}
    bare: list[float] = []
    for _ in range(repeats):
        bare.append(_per_call_ns(bare_loop, calls))
        batch = ids.take(calls)
        refused = ids.take(calls)
        for j in refused:
            rec.request_received(j)
        rec.drain()
        for name, call in calls_of.items():
            jobs = refused if name == "answer_sent (refused as full)" else batch
            queued[name].append(_per_call_ns(lambda c=call, b=jobs: c(b), calls))
            applied[name].append(_per_call_ns(rec.drain, calls))
    bare_ns = median(bare)
    methods = {name: {"ns": median(queued[name]), "x_bare_inc": median(queued[name]) / bare_ns,
                      "applied_ns": median(applied[name])}
               for name in calls_of}
    return {"bare_counter_inc_ns": bare_ns, "methods": methods}


# --- all hooks, per offer -------------------------------------------------------------------

class _StubRequest:
    def __init__(self, job_id: str) -> None:
        self.id = job_id

    async def accept(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def reject(self, *args: Any, **kwargs: Any) -> None:
        pass


async def _accept(req: Any) -> None:
    await req.accept()


def _run(coro: Any) -> None:
    try:
        coro.send(None)
    except StopIteration:
        pass


def _messages(job_id: str) -> dict[str, Any]:
    job = proto.Job(id=job_id)
    avail = proto.AvailabilityRequest(job=job)
    assign = proto.JobAssignment(job=job)
    yes = proto.WorkerMessage()
    yes.availability.job_id, yes.availability.available = job_id, True
    no = proto.WorkerMessage()
    no.availability.job_id, no.availability.available = job_id, False
    running = proto.WorkerMessage(update_job=proto.UpdateJobStatus(
        job_id=job_id, status=proto.JobStatus.JS_RUNNING))
    done = proto.WorkerMessage(update_job=proto.UpdateJobStatus(
        job_id=job_id, status=proto.JobStatus.JS_SUCCESS))
    return {"avail": avail, "assign": assign, "yes": yes, "no": no, "running": running,
            "done": done, "req": _StubRequest(job_id)}


def _protocol(worker: Any) -> SimpleNamespace:
    """The worker's protocol methods an offer goes through, by hook name."""
    return SimpleNamespace(**{hook: sdk.protocol_method(worker, hook)[1]
                              for hook in ("availability", "assignment", "outgoing")})


def bench_hooks(calls: int, repeats: int) -> dict[str, Any]:
    rec = new_recorder()
    errors = ErrorSink()
    bare_worker, tapped_worker = sdk.inert_worker(), sdk.inert_worker()
    WireTap(WorkerView(tapped_worker), rec, errors).install(Hooks(rec, errors, "bench"))
    # resolved once, after the taps are in: the loops below time the calls, not the lookups
    bare, tapped = _protocol(bare_worker), _protocol(tapped_worker)
    slot = SlotLoad(64)
    load_worker = SimpleNamespace(active_jobs=[object()] * 8)
    observed_load = ObservedLoadFnc(slot, rec, errors)
    observed_request = ObservedRequestFnc(_accept, rec, errors)
    ids = _Ids()
    _lifecycle(rec, ids.take(recorder_mod.MAX_TRACKED_JOBS))

    def accepted_job(w: Any, load: Any, request: Any, msgs: list[dict[str, Any]]) -> None:
        for m in msgs:
            w.availability(m["avail"])
            load(load_worker)  # 1.8 refreshes the load before answering each offer
            _run(request(m["req"]))
            _run(w.outgoing(m["yes"]))
            w.assignment(m["assign"])
            _run(w.outgoing(m["running"]))
            _run(w.outgoing(m["done"]))

    def refused_offer(w: Any, load: Any, msgs: list[dict[str, Any]]) -> None:
        for m in msgs:
            w.availability(m["avail"])
            load(load_worker)
            _run(w.outgoing(m["no"]))

    acc_bare, acc_hooked, ref_bare, ref_hooked = [], [], [], []
    acc_applied, ref_applied = [], []
    for _ in range(repeats):
        msgs_b = [_messages(j) for j in ids.take(calls)]
        msgs_h = [_messages(j) for j in ids.take(calls)]
        acc_bare.append(_per_call_ns(lambda m=msgs_b: accepted_job(bare, slot, _accept, m), calls))
        acc_hooked.append(_per_call_ns(
            lambda m=msgs_h: accepted_job(tapped, observed_load, observed_request, m), calls))
        acc_applied.append(_per_call_ns(rec.drain, calls))
        msgs_b = [_messages(j) for j in ids.take(calls)]
        msgs_h = [_messages(j) for j in ids.take(calls)]
        ref_bare.append(_per_call_ns(lambda m=msgs_b: refused_offer(bare, slot, m), calls))
        ref_hooked.append(_per_call_ns(
            lambda m=msgs_h: refused_offer(tapped, observed_load, m), calls))
        ref_applied.append(_per_call_ns(rec.drain, calls))
    return {"accepted job": {**_pair(acc_bare, acc_hooked), "applied_ns": median(acc_applied)},
            "offer refused as full": {**_pair(ref_bare, ref_hooked),
                                      "applied_ns": median(ref_applied)}}


# --- memory ------------------------------------------------------------------------------------

def bench_memory() -> dict[str, Any]:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rec = new_recorder()
        bound = tracemalloc.get_traced_memory()[0]
        ids = _Ids()
        _lifecycle(rec, ids.take(recorder_mod.MAX_TRACKED_JOBS))
        gc.collect()
        at_bound = tracemalloc.get_traced_memory()[0]
        _lifecycle(rec, ids.take(recorder_mod.MAX_TRACKED_JOBS))
        gc.collect()
        twice = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return {"metrics_and_series_bytes": bound - before,
            "bookkeeping_at_bound_bytes": at_bound - bound,
            "bookkeeping_after_2x_bound_bytes": twice - bound,
            "max_tracked_jobs": recorder_mod.MAX_TRACKED_JOBS}


def _pair(bare: list[float], hooked: list[float]) -> dict[str, float]:
    ratios = [h / b for b, h in zip(bare, hooked, strict=True)]
    extra = [h - b for b, h in zip(bare, hooked, strict=True)]
    return {"bare_ns": median(bare), "hooked_ns": median(hooked), "extra_ns": median(extra),
            "ratio": median(ratios)}


def run(quick: bool, log: Any = print) -> dict[str, Any]:
    calls = 2000 if quick else 5000
    repeats = 5 if quick else 11
    log("micro: load_fnc wrapper")
    load = bench_load_fnc(calls * 4, repeats)
    log("micro: recorder methods")
    rec = bench_recorder(calls, repeats)
    log("micro: all hooks per offer")
    hooks = bench_hooks(calls, repeats)
    return {"load_fnc": load, "recorder": rec, "hooks": hooks, "memory": bench_memory(),
            "calls": calls, "repeats": repeats}
