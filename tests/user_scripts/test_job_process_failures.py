"""Job processes that cannot start are counted, not only logged.

A real worker whose ``prewarm`` raises in every job process, under the default process
executor: the server's offers are accepted and assigned, no job ever launches, and the
SDK's "error initializing process" (and on 1.8 "failed to acquire process for job after
3 attempts") lines become ``livekit_agents_job_process_failures_total{reason}``.
With idle processes to warm (the production default), 1.2 never even registers: its
pool waits for the first idle process without a limit.
"""

from __future__ import annotations

import pytest
from scripts import prewarm_raises, run_script

from worker_harness import NEW_SDK, eventually

AGENT = "broken"

PREWARM_RAISES = prewarm_raises(AGENT)


async def test_failing_job_process_initialisation_is_counted(sim, tmp_path):
    path = tmp_path / "agent.py"
    path.write_text(PREWARM_RAISES)
    async with run_script(path, sim.url, tmp_path, extra_env={"IDLE": "0"}) as script:
        await script.scrape_when_up()
        await sim.wait_for_workers(1, agent_name=AGENT, timeout=60)
        result = await sim.dispatch(agent_name=AGENT)
        assert result.outcome == "assigned", result
        [truth] = sim.truth.for_agent(AGENT)
        seen: dict[str, float] = {}

        async def counted() -> bool:
            s = await script.scrape()
            seen.update({reason: s.value("livekit_agents_job_process_failures_total",
                                         agent_name=AGENT, reason=reason)
                         for reason in ("initialize", "acquire", "launch")})
            seen["accepted"] = s.value("livekit_agents_job_requests_accepted_total")
            seen["assignments"] = s.value("livekit_agents_job_assignments_total")
            seen["launched"] = s.value("livekit_agents_jobs_launched_total")
            # 1.8 gives up on the job after three acquire attempts; 1.2 waits for a process
            # for ever after the first one failed
            if NEW_SDK:
                return seen["initialize"] >= 3 and seen["acquire"] == 1
            return seen["initialize"] >= 1

        try:
            await eventually(counted, timeout=60, what="job process failures counted")
        except AssertionError:
            raise AssertionError(f"counted {seen}; log:\n{script.log()[-3000:]}") from None
        log = script.log()
        assert log.count("error initializing process") >= seen["initialize"] >= 1, seen
        assert seen["accepted"] == truth.answers_available == 1, (seen, truth)
        assert seen["assignments"] == truth.assignments_sent == 1, (seen, truth)
        assert seen["launched"] == 0 and truth.jobs_started == 0, (seen, truth)
        assert seen["launch"] == 0, seen
        if NEW_SDK:
            assert "failed to acquire process for job after 3 attempts" in log
        print(f"process failures: {seen}")


@pytest.mark.skipif(NEW_SDK, reason="1.3+ starts without its idle processes after a timeout")
async def test_old_sdk_worker_that_cannot_warm_its_idle_processes_never_registers(sim, tmp_path):
    path = tmp_path / "agent.py"
    path.write_text(PREWARM_RAISES)
    async with run_script(path, sim.url, tmp_path, extra_env={"IDLE": "1"}) as script:
        seen: dict[str, float] = {}

        async def counted() -> bool:
            s = await script.scrape()
            seen["initialize"] = s.value("livekit_agents_job_process_failures_total",
                                         agent_name=AGENT, reason="initialize")
            seen["registered"] = s.value("livekit_agents_worker_registered", agent_name=AGENT)
            return seen["initialize"] >= 3

        await script.scrape_when_up()
        try:
            await eventually(counted, timeout=60, what="initialisation failures counted")
        except AssertionError:
            raise AssertionError(f"counted {seen}; log:\n{script.log()[-3000:]}") from None
        assert seen["registered"] == 0 and not sim.truth.for_agent(AGENT), seen
