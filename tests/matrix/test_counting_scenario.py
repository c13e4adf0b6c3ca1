"""The counting scenario that CI runs on the latest patch of every minor release (make
test-matrix), and the whole suite runs at both ends of the range.

One real worker goes through every way an offer can end (accepted, rejected, answered twice,
refused while full, two offers close together, an assignment that never comes, a job whose
entrypoint raises); then every counter must equal the simulator's wire record, every hook
must be attached, and the behaviour the worker showed must be the one ``sdk.py`` decided
from the SDK's code. With ``LKX_MATRIX_REPORT`` set, one line per run is appended there
(the compatibility table in docs/SDK_INTERNALS.md is made of these lines).
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from livekit_agents_exporter import sdk
from livekit_agents_exporter.metrics import EXPORTER_HOOKS
from livekit_agents_exporter.synthetic import job_spec
from worker_harness import Knobs, eventually, run_worker

P = "livekit_agents_"


async def test_counters_equal_the_wire_on_this_sdk(sim, short_assignment_timeout):
    started = time.monotonic()
    knobs = Knobs(0.0)
    handled: list[str] = []

    async def on_request(req):
        action = job_spec(req.job).get("action", "accept")
        try:
            if action == "reject":
                await req.reject()
            elif action == "slow_accept":
                await asyncio.sleep(0.3)
                await req.accept()
            elif action == "reject_then_accept":
                await req.reject()
                await req.accept()
            else:
                await req.accept()
        except sdk.AssignmentTimeoutError:
            pass
        finally:
            handled.append(req.id)

    async with run_worker(sim, load_fnc=knobs, threshold=0.5, on_request=on_request,
                          num_idle=1) as w:
        truth = sim.truth.workers[w.worker_id]

        async def settled():
            return truth.jobs_running == 0 and not (await w.scrape()).value(
                P + "worker_active_jobs")

        # accepted, rejected, answered twice
        for action in ("accept", "accept", "reject", "reject_then_accept"):
            await sim.dispatch(agent_name="agent", metadata={"action": action, "duration": 0.1})
        await eventually(lambda: truth.jobs_finished >= 2, what="the accepted jobs to finish")
        await eventually(settled, what="no job running")
        # a second answer waits out the assignment timeout, holding its reserved slot
        await eventually(lambda: len(handled) >= 4, what="the four handlers to return")

        # two offers close together on an idle worker: reserved slots refuse the second
        pair = await asyncio.gather(*[
            sim.offer(w.worker_id, agent_name="agent",
                      metadata={"action": "slow_accept", "duration": 0.1}) for _ in range(2)])
        reserved_refused = sorted(a.available for a in pair) == [False, True]
        await eventually(lambda: truth.jobs_finished >= 2 + sum(a.available for a in pair),
                         what="the paired jobs to finish")
        await eventually(settled, what="no job running")

        # full: the load jumps, an offer already in flight arrives
        knobs.load = 0.9
        # the effective-load gauge reads the value the SDK stored, which is what it compares
        await eventually(lambda: _gauge_is(w, "worker_effective_load_ratio", 0.9),
                         what="the SDK holding load 0.9")
        calls_before = len(handled)
        in_flight = await sim.offer(w.worker_id, agent_name="agent",
                                    metadata={"action": "accept", "duration": 0.1})
        refused_by_itself = not in_flight.available and len(handled) == calls_before
        await eventually(lambda: truth.last_status == "WS_FULL", what="the full status")
        knobs.load = 0.0
        await eventually(lambda: truth.last_status == "WS_AVAILABLE", what="available again")
        await eventually(settled, what="no job running")

        # an assignment that never comes
        sim.withhold_assignments = True
        await sim.dispatch(agent_name="agent", metadata={"action": "accept", "duration": 0.1})
        await eventually(lambda: w.metric(P + "assignment_timeouts_total"), timeout=15,
                         what="the assignment timeout")
        sim.withhold_assignments = False

        # an entrypoint that raises before connecting: does the job end by itself?
        finished = truth.jobs_finished
        failing = await sim.dispatch(agent_name="agent",
                                     metadata={"action": "accept", "duration": 0.1,
                                               "fail": "raise"})
        zombie = False
        try:
            await eventually(lambda: truth.jobs_finished > finished, timeout=6,
                             what="the failed job to end")
        except AssertionError:
            zombie = True  # it never ends by itself: the server ends it with the room
            await sim.terminate_job(failing.job_id, failing.worker_id)
        await eventually(lambda: truth.jobs_running == 0, timeout=15, what="every job to end")
        # four dispatches, the pair (one without the handler when refused by itself), the
        # offer in flight (likewise), the withheld assignment and the failing job
        calls = 4 + (1 if reserved_refused else 2) + (0 if refused_by_itself else 1) + 2
        await eventually(lambda: len(handled) >= calls, timeout=15,
                         what="every handler to return")
        await eventually(lambda: _gauge_is(w, "jobs_finished_total", truth.jobs_finished),
                         what="the last job end counted")

        s = await w.scrape()
        got = {
            "offers": (s.value(P + "job_requests_total"), truth.availability_requests),
            "accepted": (s.value(P + "job_requests_accepted_total"), truth.first_answers(True)),
            "rejected": (s.value(P + "job_requests_rejected_total"), truth.first_answers(False)),
            "assignments": (s.value(P + "job_assignments_total"), truth.assignments_sent),
            "timeouts": (s.value(P + "assignment_timeouts_total"), truth.assignments_withheld),
            "launched": (s.value(P + "jobs_launched_total"), len(truth.launched_jobs)),
            "finished": (s.value(P + "jobs_finished_total"), truth.jobs_finished),
        }
        hooks = {h: s.value("livekit_agents_exporter_hooks_attached", hook=h)
                 for h in EXPORTER_HOOKS}
        errors = s.value("livekit_agents_exporter_errors_total")
        full_refusals = s.value(P + "job_requests_rejected_total", reason="full")
        scenario_seconds = time.monotonic() - started

    exact = all(mine == wire for mine, wire in got.values())
    _report(got, hooks, exact, refused_by_itself, reserved_refused, zombie, scenario_seconds,
            time.monotonic() - started)
    assert exact, got
    assert hooks == dict.fromkeys(EXPORTER_HOOKS, 1.0), hooks
    assert errors == 0
    assert truth.repeated_answers == 1, truth.answers_by_job
    # the behaviour class the exporter assumes is the one the worker showed
    assert refused_by_itself == sdk.REFUSES_WHEN_FULL, (refused_by_itself, sdk.SDK_VERSION)
    assert full_refusals == (2 if sdk.RESERVED_SLOTS_IN_LOAD else 1 if sdk.REFUSES_WHEN_FULL
                             else 0)
    assert reserved_refused == sdk.RESERVED_SLOTS_IN_LOAD, (reserved_refused, sdk.SDK_VERSION)


async def _gauge_is(w, short: str, value: float) -> bool:
    return (await w.metric(P + short)) == value


def _report(got, hooks, exact, refuses, reserved, zombie, scenario, with_shutdown):
    path = os.environ.get("LKX_MATRIX_REPORT")
    if not path:
        return
    line = {
        "sdk": sdk.SDK_VERSION,
        "hooks_attached": f"{int(sum(hooks.values()))}/{len(hooks)}",
        "counts_exact": exact,
        "counts": {k: int(mine) for k, (mine, _wire) in got.items()},
        "refuses_when_full": refuses,
        "reserved_slots": reserved,
        "zombie_after_entrypoint_error": zombie,
        "scenario_seconds": round(scenario, 1),
        "with_worker_shutdown_seconds": round(with_shutdown, 1),
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
