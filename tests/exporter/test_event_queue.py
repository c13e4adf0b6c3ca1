"""Hooks only queue; the metric updates land before any collection, in order, and the queue
stays short whether or not anyone scrapes."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry

from livekit_agents_exporter import recorder as recorder_mod
from livekit_agents_exporter.recorder import DrainThread, Recorder
from livekit_agents_exporter.safety import ErrorSink


def _recorder() -> tuple[Recorder, CollectorRegistry]:
    registry = CollectorRegistry()
    rec = Recorder(registry, ErrorSink())
    rec.bind("a", {}, {})
    return rec, registry


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"agent_name": "a", **labels})


def test_a_hook_only_queues_and_the_next_collection_applies_it():
    rec, registry = _recorder()
    rec.request_received("AJ_1")
    rec.answer_sent("AJ_1", available=False, draining=False)
    assert rec.queued == 2
    assert _value(registry, "livekit_agents_job_requests_rejected_total", reason="full") == 1
    assert rec.queued == 0


def test_times_are_taken_when_the_event_happens_not_when_it_is_applied():
    now = [100.0]
    rec = Recorder(registry := CollectorRegistry(), ErrorSink(), clock=lambda: now[0])
    rec.bind("a", {}, {})
    rec.request_received("AJ_1")
    now[0] = 100.004
    rec.answer_sent("AJ_1", available=True, draining=False)
    now[0] = 500.0  # long before the drain: must not count
    assert _value(registry, "livekit_agents_job_request_answer_duration_seconds_bucket",
                  le="0.005") == 1


class _Unreadable:
    """A value that fails whoever reads it, as a bug in applying an event would."""

    def __bool__(self) -> bool:
        raise RuntimeError("injected")


def test_a_failing_event_is_counted_under_its_hook_and_the_rest_still_apply():
    rec, registry = _recorder()
    rec.request_received("AJ_1")
    rec.status_reported(_Unreadable())  # type: ignore[arg-type]  # the injected failure
    rec.request_received("AJ_2")
    assert _value(registry, "livekit_agents_job_requests_total") == 2
    assert _value(registry, "livekit_agents_exporter_errors_total", component="wire") == 1


def test_queue_is_bounded_without_any_drain(monkeypatch):
    monkeypatch.setattr(recorder_mod, "MAX_QUEUED_EVENTS", 100)
    rec, registry = _recorder()
    for i in range(1000):
        rec.request_received(f"AJ_{i}")
        assert rec.queued <= 101
    assert _value(registry, "livekit_agents_job_requests_total") == 1000


def test_drain_thread_empties_the_queue_when_nobody_scrapes():
    rec, registry = _recorder()
    errors = ErrorSink()
    drain = DrainThread(rec, errors, interval=0.05)
    drain.start()
    try:
        rec.request_received("AJ_1")
        for _ in range(100):
            if rec.queued == 0:
                break
            threading.Event().wait(0.02)
        assert rec.queued == 0
    finally:
        drain.stop()
    rec.request_received("AJ_2")
    drain.stop()  # idempotent; applies what is left
    assert rec.queued == 0 and _value(registry, "livekit_agents_job_requests_total") == 2


def test_concurrent_hooks_and_drains_lose_nothing_and_keep_each_jobs_order():
    rec, registry = _recorder()
    threads = 4
    per_thread = 2000

    def offers(t: int) -> None:
        for i in range(per_thread):
            job = f"AJ_{t}_{i}"
            rec.request_received(job)
            rec.answer_sent(job, available=True, draining=False)
            rec.assignment_received(job)
            rec.job_running(job)
            rec.job_ended(job, process_failed=False)

    def scrapes(stop: threading.Event) -> None:
        while not stop.is_set():
            registry.get_sample_value("livekit_agents_job_requests_total", {"agent_name": "a"})

    stop = threading.Event()
    scraper = threading.Thread(target=scrapes, args=(stop,))
    scraper.start()
    workers = [threading.Thread(target=offers, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    scraper.join()
    total = threads * per_thread
    assert _value(registry, "livekit_agents_job_requests_total") == total
    # every assignment arrived while expected, so none counted as unknown: order held per job
    assert _value(registry, "livekit_agents_job_assignments_total") == total
    assert _value(registry, "livekit_agents_job_assignments_unknown_total") == 0
    assert _value(registry, "livekit_agents_jobs_finished_total") == total
    assert _value(registry, "livekit_agents_worker_pending_assignments") == 0


def test_the_refusal_reason_travels_in_the_queued_events_in_their_order():
    """What the handler did is queued with each answer, never read back from shared state:
    offers applied long after they happened get the reasons they had at the time."""
    rec, registry = _recorder()
    for job, handler in (("AJ_r", "reject"), ("AJ_e", "error"), ("AJ_u", "unanswered"),
                         ("AJ_ra", "reject then accept")):
        rec.request_received(job)
        rec.handler_started(job)
        if handler.startswith("reject"):
            rec.handler_answered(job, "reject")
            rec.handler_answered(job, "accept")  # a second answer: the server took the first
        else:
            rec.handler_ended(job, handler)
        rec.answer_sent(job, available=False, draining=False)
    assert rec.queued > 0  # nothing applied yet: one drain applies all of it, in order
    rejected = "livekit_agents_job_requests_rejected_total"
    assert _value(registry, rejected, reason="on_request") == 2
    assert _value(registry, rejected, reason="error") == 1
    assert _value(registry, rejected, reason="unanswered") == 1
    assert _value(registry, rejected, reason="full") == 0
