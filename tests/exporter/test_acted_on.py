"""Counters count what the server acts on: the first answer per job, statuses that reach it,
and what a worker on LiveKit Cloud still shows. Real workers against the simulator, compared
with its wire record."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from livekit_agents_exporter.metrics import EXPORTER_HOOKS
from worker_harness import STYLES, Knobs, eventually, isnan, run_worker

ACCEPTED = "livekit_agents_job_requests_accepted_total"
REJECTED = "livekit_agents_job_requests_rejected_total"
TIMEOUTS = "livekit_agents_assignment_timeouts_total"
HOOKS = "livekit_agents_exporter_hooks_attached"


async def test_a_handler_that_answers_twice_counts_its_first_answer(sim, short_assignment_timeout):
    handled: list[str] = []

    async def on_request(req):
        action = json.loads(req.job.metadata)["action"]
        try:
            if action == "reject_then_accept":
                await req.reject()
                await req.accept()
            else:  # accept twice: the second waits for an assignment that never comes
                await req.accept()
                await req.accept()
        finally:
            handled.append(action)

    async with run_worker(sim, on_request=on_request) as w:
        refused = await sim.dispatch(agent_name="agent",
                                     metadata={"action": "reject_then_accept", "duration": 0.1})
        taken = await sim.dispatch(agent_name="agent",
                                   metadata={"action": "accept_twice", "duration": 0.1})
        assert taken.outcome == "assigned", taken
        assert refused.outcome != "assigned", refused
        # both second answers wait out the (shortened) assignment timeout
        await eventually(lambda: len(handled) == 2, timeout=15, what="both handlers to return")
        await eventually(lambda: sim.truth.workers[w.worker_id].jobs_finished >= 1,
                         what="the accepted job to finish")
        truth = sim.truth.workers[w.worker_id]
        s = await w.scrape()
        # the wire carried four answers for two jobs
        assert truth.repeated_answers == 2, truth.answers_by_job
        assert truth.answers_available == 3 and truth.answers_unavailable == 1
        # the server acted on one acceptance and one refusal, and so do the counters
        assert s.value(ACCEPTED) == truth.first_answers(True) == 1
        assert s.value(REJECTED) == truth.first_answers(False) == 1
        assert s.value(REJECTED, reason="on_request") == 1
        assert s.value("livekit_agents_job_assignments_total") == truth.assignments_sent == 1
        assert s.value("livekit_agents_jobs_launched_total") == 1
        # the second answers' timeouts are not assignment timeouts of accepted jobs
        assert s.value(TIMEOUTS) == 0
        assert s.value("livekit_agents_worker_pending_assignments") == 0


async def test_statuses_dropped_while_reconnecting_are_not_counted(sim):
    async with run_worker(sim) as w:
        first = w.worker_id
        await eventually(lambda: sim.truth.workers[first].last_status == "WS_AVAILABLE")
        sim.refuse_connections = True
        await sim.disconnect_worker(first)
        await eventually(lambda: sim.refused_connections >= 2, timeout=15,
                         what="the worker retrying (and dropping statuses) while refused")
        assert await w.metric("livekit_agents_worker_registered") == 0
        # draining sends a WS_FULL status now, while there is no connection: the SDK drops it
        drain = asyncio.create_task(w.worker.drain())
        await eventually(lambda: w.metric("livekit_agents_worker_draining"), what="draining")
        s = await w.scrape()
        assert s.value("livekit_agents_worker_full_transitions_total") == 0
        assert s.value("livekit_agents_worker_full") == 0
        assert s.value("livekit_agents_worker_full_seconds_total") == 0
        sim.refuse_connections = False
        await eventually(lambda: w.worker.id not in ("unregistered", first), timeout=30,
                         what="re-registration")
        second = w.worker.id
        await eventually(lambda: second in sim.truth.workers
                         and sim.truth.workers[second].last_status == "WS_FULL", timeout=15,
                         what="the draining status on the new connection")
        loop = asyncio.get_running_loop()
        full_seen_at = loop.time()
        await eventually(lambda: w.metric("livekit_agents_worker_full"), what="full counted")
        s = await w.scrape()
        scraped_at = loop.time()
        on_wire = sum(t.full_transitions for t in sim.truth.workers.values())
        assert s.value("livekit_agents_worker_full_transitions_total") == on_wire == 1
        # full time starts when the server heard it, not at the dropped status in the gap
        full_seconds = s.value("livekit_agents_worker_full_seconds_total")
        assert full_seconds <= scraped_at - full_seen_at + 0.5
        assert s.value("livekit_agents_worker_registrations_total") == 2
        await drain


@pytest.mark.parametrize("style", STYLES)
async def test_on_livekit_cloud_the_sdk_defaults_are_exported(sim, monkeypatch, caplog, style):
    """The SDK decides it is on Cloud from LIVEKIT_WORKER_TOKEN, read when it builds the worker."""
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("LIVEKIT_WORKER_TOKEN", "cloud-worker-token")
    async with run_worker(sim, style, load_fnc=Knobs(0.2), threshold=0.5) as w:
        # the SDK's own load is this machine's CPU: the worker may be full, so the offer is
        # sent to it directly (as one already in flight) and counted whatever the answer
        answer = await sim.offer(w.worker_id, agent_name="agent", metadata={"duration": 0.1})
        truth = sim.truth.workers[w.worker_id]
        if answer.available:
            await eventually(lambda: truth.jobs_finished >= 1, what="the job to finish")
        s = await w.scrape()
        assert s.value("livekit_agents_worker_cloud_load_defaults") == 1
        # the SDK put its default threshold (0.7 in production) in place of ours
        assert s.value("livekit_agents_worker_load_threshold_ratio") == 0.7
        hooks = {h: s.value(HOOKS, hook=h) for h in EXPORTER_HOOKS}
        assert hooks == {h: 0.0 if h == "load_fnc" else 1.0 for h in EXPORTER_HOOKS}, hooks
        assert s.value("livekit_agents_worker_load_samples_ratio_count") == 0
        # the load the SDK computed is still shown, and the wire is counted as usual
        await eventually(lambda: _load_known(w), what="the SDK's own load value")
        assert s.value("livekit_agents_job_requests_total") == truth.availability_requests == 1
        assert s.value(ACCEPTED) == truth.first_answers(True) == int(answer.available)
        assert s.value(REJECTED) == truth.first_answers(False) == int(not answer.available)
        assert s.value("livekit_agents_jobs_launched_total") == len(truth.launched_jobs)
    ours = [r for r in caplog.records if "runs on LiveKit Cloud" in r.getMessage()]
    assert len(ours) == 1, [r.getMessage() for r in caplog.records]
    sdks = [r for r in caplog.records if "custom load_fnc is not supported" in r.getMessage()]
    assert len(sdks) == 1, "the SDK itself replaced the user's load_fnc"


async def _load_known(w):
    value = await w.metric("livekit_agents_worker_load_ratio")
    return not isnan(value)


async def test_off_cloud_the_flag_is_zero(sim, monkeypatch):
    monkeypatch.delenv("LIVEKIT_WORKER_TOKEN", raising=False)
    async with run_worker(sim) as w:
        s = await w.scrape()
        assert s.value("livekit_agents_worker_cloud_load_defaults") == 0
        assert s.value(HOOKS, hook="load_fnc") == 1

