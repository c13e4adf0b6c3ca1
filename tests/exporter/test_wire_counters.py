"""Counters equal what crossed the wire, for every way a job offer can end.

Each test drives a real worker against the simulator and compares the scraped
counters with the simulator's own record of the messages it exchanged.
"""

from __future__ import annotations

import pytest

from worker_harness import NEW_SDK, STYLES, Knobs, eventually, run_worker

REJECTED = "livekit_agents_job_requests_rejected_total"


def truth_for(sim, worker_id: str):
    return sim.truth.workers[worker_id]


@pytest.mark.parametrize("style", STYLES)
async def test_accepted_jobs_run_and_are_counted(sim, style):
    async with run_worker(sim, style) as w:
        results = [await sim.dispatch(agent_name="agent", metadata={"duration": 0.2})
                   for _ in range(3)]
        assert [r.outcome for r in results] == ["assigned"] * 3
        await eventually(lambda: sim.truth.workers[w.worker_id].jobs_finished >= 3,
                         what="three finished jobs")
        s = await w.scrape()
        truth = truth_for(sim, w.worker_id)
        assert s.value("livekit_agents_job_requests_total") == truth.availability_requests == 3
        assert s.value("livekit_agents_job_requests_accepted_total") == truth.answers_available == 3
        assert s.value("livekit_agents_job_assignments_total") == truth.assignments_sent == 3
        assert s.value("livekit_agents_jobs_launched_total") == 3
        assert s.value("livekit_agents_jobs_finished_total") == 3
        assert s.value(REJECTED) == 0
        assert s.value("livekit_agents_job_dispatch_latency_seconds_count") == 3
        assert s.value("livekit_agents_job_duration_seconds_count") == 3
        assert s.value("livekit_agents_job_request_answer_duration_seconds_count") == 3
        assert s.value("livekit_agents_worker_active_jobs") == 0
        assert s.value("livekit_agents_worker_pending_assignments") == 0
        assert s.value("livekit_agents_worker_registered") == 1
        info = s.find("livekit_agents_worker_info", agent_name="agent")
        assert info == [1.0]


async def test_rejection_reasons_match_the_handler(sim):
    decisions = {"reject": "on_request", "silent": "unanswered", "raise": "error"}

    async def on_request(req):
        action = req.job.metadata and __import__("json").loads(req.job.metadata).get("action")
        if action == "reject":
            await req.reject()
        elif action == "raise":
            raise RuntimeError("handler bug")
        elif action == "silent":
            return
        else:
            await req.accept()

    async with run_worker(sim, on_request=on_request) as w:
        for action in decisions:
            await sim.dispatch(agent_name="agent", metadata={"action": action, "duration": 0.1})
        s = await w.scrape()
        truth = truth_for(sim, w.worker_id)
        for reason in decisions.values():
            assert s.value(REJECTED, reason=reason) == 1, reason
        assert s.value(REJECTED) == truth.answers_unavailable == 3
        assert s.value("livekit_agents_job_requests_total") == truth.availability_requests == 3
        # only the 1.8 reject() sets terminate=true on the wire
        assert truth.answers_terminate == (1 if NEW_SDK else 0)


async def test_full_worker_refuses_or_oversubscribes_as_its_sdk_does(sim):
    knobs = Knobs(0.1)

    async def on_request(req):
        await req.accept()

    async with run_worker(sim, load_fnc=knobs, threshold=0.5, on_request=on_request) as w:
        # the load jumps after the last status update: the server still sees AVAILABLE
        await eventually(lambda: sim.truth.workers[w.worker_id].last_status == "WS_AVAILABLE")
        knobs.load = 0.9
        result = await sim.dispatch(agent_name="agent", metadata={"duration": 0.1})
        s = await w.scrape()
        truth = truth_for(sim, w.worker_id)
        if NEW_SDK:  # 1.8 re-reads the load before answering and refuses without asking
            assert result.outcome == "no_worker_available"
            assert s.value(REJECTED, reason="full") == 1 == truth.answers_unavailable
        else:  # 1.2 always asks on_request, which accepts
            assert result.outcome == "assigned"
            assert s.value("livekit_agents_job_requests_accepted_total") == 1
        # then the status report turns full and the server stops offering
        await eventually(lambda: sim.truth.workers[w.worker_id].last_status == "WS_FULL")
        s = await w.scrape()
        assert s.value("livekit_agents_worker_full") == 1
        assert s.value("livekit_agents_worker_full_transitions_total") == 1
        assert s.value("livekit_agents_worker_load_ratio") == 0.9
        assert s.value("livekit_agents_worker_load_threshold_ratio") == 0.5
        lost = await sim.dispatch(agent_name="agent", metadata={"duration": 0.1})
        assert lost.outcome == "no_worker_available"
        await eventually(lambda: w.metric("livekit_agents_worker_full_seconds_total"),
                         what="time spent full to accumulate")


async def test_draining_worker_reports_full_and_refuses(sim):
    async with run_worker(sim) as w:
        drain = __import__("asyncio").create_task(w.worker.drain())
        await eventually(lambda: sim.truth.workers[w.worker_id].last_status == "WS_FULL")
        s = await w.scrape()
        assert s.value("livekit_agents_worker_draining") == 1
        assert s.value("livekit_agents_worker_full") == 1
        # an offer that reaches it anyway (sent before the server saw the status)
        result = await sim.offer(w.worker_id, agent_name="agent", metadata={"duration": 0.1})
        s = await w.scrape()
        if NEW_SDK:
            assert not result.available
            assert s.value(REJECTED, reason="draining") == 1
        else:  # 1.2 accepts while draining (docs/SDK_INTERNALS.md)
            assert result.available
        assert s.value("livekit_agents_job_requests_total") == 1
        await drain


async def test_assignment_timeout_is_counted_once(sim, short_assignment_timeout):
    async with run_worker(sim) as w:
        sim.withhold_assignments = True
        result = await sim.dispatch(agent_name="agent", metadata={"duration": 0.1})
        assert result.outcome == "assigned" or result.worker_id == w.worker_id
        await eventually(lambda: w.metric("livekit_agents_assignment_timeouts_total"),
                         what="assignment timeout")
        s = await w.scrape()
        truth = truth_for(sim, w.worker_id)
        assert s.value("livekit_agents_assignment_timeouts_total") == 1
        assert truth.assignments_withheld == 1
        assert s.value("livekit_agents_job_requests_accepted_total") == 1
        assert s.value("livekit_agents_worker_pending_assignments") == 0
        assert s.value("livekit_agents_jobs_launched_total") == 0
        # the failure is not also a rejection: nothing else crossed the wire
        assert s.value(REJECTED) == 0 == truth.answers_unavailable


async def test_late_assignment_counts_as_unknown(sim, short_assignment_timeout):
    async with run_worker(sim) as w:
        sim.assignment_delay = short_assignment_timeout + 1.0
        await sim.dispatch(agent_name="agent", metadata={"duration": 0.1})
        await eventually(lambda: w.metric("livekit_agents_job_assignments_unknown_total"),
                         what="late assignment")
        s = await w.scrape()
        assert s.value("livekit_agents_assignment_timeouts_total") == 1
        assert s.value("livekit_agents_job_assignments_total") == 0


async def test_every_catalogue_metric_is_served(sim):
    """The README promises every metric in the catalogue; a live worker serves them all."""
    from livekit.agents import JobExecutorType

    from livekit_agents_exporter.metrics import CATALOGUE

    async with run_worker(sim, executor=JobExecutorType.PROCESS, num_idle=1) as w:
        await sim.dispatch(agent_name="agent", metadata={"duration": 0.1})
        await eventually(lambda: w.metric("livekit_agents_jobs_finished_total"), timeout=30,
                         what="a finished job")
        s = await w.scrape()
        for spec in CATALOGUE:
            name = spec.series_name + ("_count" if spec.kind == "histogram" else "")
            assert s.has(name), f"{name} missing from /metrics"
            for sample in s.find(name):
                assert sample == sample or spec.short == "worker_load_ratio", f"{name} is NaN"
