"""The README's examples, run as users run them, keep their jobs working and count them exactly.

Each file in ``examples/`` is started as ``python <file> start`` with the SDK's default
process executor and start method, so every job process imports the script again and
runs its module-level ``instrument()`` call. Jobs must still launch and finish (the
simulator sees JS_RUNNING and JS_SUCCESS for each), and the worker's counters must equal
what the simulator saw on the wire.
"""

from __future__ import annotations

import pytest
from scripts import EXAMPLES, Script, run_script

from worker_harness import NEW_SDK, eventually

JOBS = 4
AGENT = "support"  # the examples' agent_name

EXAMPLE_FILES = ["run_app_options.py"] + (["agent_server.py"] if NEW_SDK else [])


async def dispatch_and_compare(sim, script: Script, jobs: int = JOBS, *,
                               one_at_a_time: bool = False,
                               idle_processes: bool = True) -> dict[str, float]:
    """Dispatch ``jobs`` jobs; ``one_at_a_time`` waits for each to end (dev mode keeps no
    idle process, and 1.8 counts a job waiting for its process against the threshold)."""
    await script.scrape_when_up()
    await sim.wait_for_workers(1, agent_name=AGENT, timeout=60)
    [truth] = sim.truth.for_agent(AGENT)
    for i in range(jobs):
        result = await sim.dispatch(agent_name=AGENT)
        assert result.outcome == "assigned", (i, result, script.log()[-3000:])
        if one_at_a_time:
            await eventually(lambda i=i: truth.jobs_finished == i + 1, timeout=60,
                             what=f"job {i + 1} finished (saw {truth})")

    await eventually(lambda: truth.jobs_finished == jobs, timeout=60,
                     what=f"{jobs} jobs finished on the simulator (saw {truth})")
    # every job ran; on an overloaded machine the SDK may still kill a job process that
    # misses its ping or close deadline (JS_FAILED): then it must be counted as such
    assert truth.jobs_started == jobs and truth.jobs_failed < jobs, (truth, script.log()[-3000:])

    wanted = {
        "livekit_agents_job_requests_total": truth.availability_requests,
        "livekit_agents_job_requests_accepted_total": truth.answers_available,
        "livekit_agents_job_assignments_total": truth.assignments_sent,
        "livekit_agents_jobs_launched_total": truth.jobs_started,
        "livekit_agents_jobs_finished_total": truth.jobs_finished,
        "livekit_agents_jobs_failed_total": truth.jobs_failed,
    }
    seen: dict[str, float] = {}

    async def counters_match() -> bool:
        samples = await script.scrape()
        seen.clear()
        seen.update({name: samples.value(name, agent_name=AGENT) for name in wanted})
        for reason in ("initialize", "acquire", "launch"):
            seen[reason] = samples.value("livekit_agents_job_process_failures_total",
                                         reason=reason)
        seen["exporter_errors"] = samples.value("livekit_agents_exporter_errors_total")
        return all(seen[n] == v for n, v in wanted.items())

    try:
        await eventually(counters_match, timeout=20, what="exporter counters = simulator")
    except AssertionError:
        raise AssertionError(f"exporter {seen} vs simulator {wanted}") from None
    assert seen["exporter_errors"] == 0, seen

    async def job_processes() -> float:
        return (await script.scrape()).value("livekit_agents_job_processes")

    if idle_processes:
        # idle job processes are kept warm (and replaced after each job): the process executor
        await eventually(job_processes, timeout=30, what="a job process alive")
    log = script.log()
    assert "already in use" not in log, log[-3000:]
    # on a loaded machine a job process can miss the SDK's 10 s initialisation timeout; the
    # pool replaces it, the job still runs, and the exporter counts exactly what was logged
    samples = await script.scrape()
    for reason, template in (("initialize", "error initializing process"),
                             ("acquire", "failed to acquire process for job after"),
                             ("launch", "failed to launch job on process after")):
        counted = samples.value("livekit_agents_job_process_failures_total", reason=reason)
        assert counted == script.log().count(template), (reason, counted, log[-3000:])
    assert seen["acquire"] == seen["launch"] == 0, seen
    return seen


@pytest.mark.parametrize("example", EXAMPLE_FILES)
async def test_example_runs_jobs_in_job_processes_and_counts_them(sim, tmp_path, example):
    async with run_script(EXAMPLES / example, sim.url, tmp_path) as script:
        seen = await dispatch_and_compare(sim, script)
    print(f"{example}: {seen}")


async def test_spawn_start_method_as_on_macos(sim, tmp_path):
    """Spawn imports the main module in every job process too (the default off Linux)."""
    text = (EXAMPLES / "run_app_options.py").read_text()
    assert "load_threshold=0.8)" in text
    script_path = tmp_path / "agent.py"
    script_path.write_text(text.replace("load_threshold=0.8)", "load_threshold=0.8,\n"
                                        "                     multiprocessing_context=\"spawn\")"))
    async with run_script(script_path, sim.url, tmp_path) as script:
        await dispatch_and_compare(sim, script, jobs=2)


INSTRUMENT_IN_PREWARM = '''
import logging
from livekit.agents import JobContext, JobProcess, WorkerOptions, cli
from livekit_agents_exporter import instrument

log = logging.getLogger("user-script")


def prewarm(proc: JobProcess) -> None:
    # runs in every job process; a function that calls instrument() there must do nothing
    exporter = instrument(opts)
    log.warning("prewarm instrument: active=%s url=%s", exporter.active, exporter.url)


async def entrypoint(ctx: JobContext) -> None:
    ctx.shutdown(reason="done")


def idle() -> float:
    return 0.0  # not the CPU default: a busy test machine must not make the worker full


opts = WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm, load_fnc=idle,
                     agent_name="support",
                     num_idle_processes=1)

if __name__ == "__main__":
    instrument(opts)
    cli.run_app(opts)
'''


async def test_instrument_inside_a_function_in_a_job_process_is_inert(sim, tmp_path):
    script_path = tmp_path / "agent.py"
    script_path.write_text(INSTRUMENT_IN_PREWARM)
    async with run_script(script_path, sim.url, tmp_path) as script:
        await dispatch_and_compare(sim, script, jobs=2)
        await eventually(lambda: "prewarm instrument: active=False url=None" in script.log(),
                         timeout=20, what="the job process's inert exporter line")
        assert "active=True" not in script.log()


@pytest.mark.skipif(not NEW_SDK, reason="preload_modules arrived after 1.2")
async def test_main_module_preloaded_in_the_forkserver(sim, tmp_path):
    """``preload_modules=["__main__"]`` still runs jobs. (It asks the forkserver to import
    the script; CPython 3.11's forkserver never receives the main path and skips it, so
    the forkserver branch of the detection is proved in tests/exporter instead.)"""
    text = (EXAMPLES / "run_app_options.py").read_text()
    script_path = tmp_path / "agent.py"
    script_path.write_text(text.replace("load_threshold=0.8)", "load_threshold=0.8,\n"
                                        "                     preload_modules=[\"__main__\"])"))
    async with run_script(script_path, sim.url, tmp_path) as script:
        await dispatch_and_compare(sim, script, jobs=2)
