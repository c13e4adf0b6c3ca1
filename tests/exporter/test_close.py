"""``Exporter.close()`` undoes what ``instrument()`` did; the worker keeps working, unobserved."""

from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from typing import Any

import aiohttp
import pytest
from livekit.agents import JobExecutorType
from prometheus_client import CollectorRegistry

from livekit_agents_exporter import Exporter, instrument, sdk
from livekit_agents_exporter.load_probe import ObservedLoadFnc
from livekit_agents_exporter.synthetic import synthetic_entrypoint
from worker_harness import (
    NEW_SDK,
    SDK_ENTRYPOINT_ERROR,
    STYLES,
    eventually,
    run_worker,
    sdk_logged,
)

HANDLER_TYPES = (sdk.JobEventChannel, sdk.ProcessFailureChannel)


class CountingLoad:
    """A load function that counts its calls: the SDK still calls it after close()."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return 0.1


async def accept(req: Any) -> None:
    await req.accept()


def _unconnected_options(agent_name: str) -> Any:
    """Options for a worker that is never run: instrument() and close() only."""
    return sdk.worker_options(synthetic_entrypoint, load_fnc=CountingLoad(), load_threshold=0.7,
                              agent_name=agent_name, ws_url="ws://127.0.0.1:1", api_key="k",
                              api_secret="s")


def counted_samples(exporter: Exporter) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every counter and histogram sample of the exporter's own metrics, read from its registry."""
    found = {}
    for family in exporter.registry.collect():
        if family.type not in ("counter", "histogram") or not family.name.startswith("livekit_"):
            continue
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def exporter_handlers() -> list[logging.Handler]:
    loggers = (logging.getLogger(sdk.JOB_EVENTS_LOGGER), logging.getLogger(sdk.SDK_LOGGER))
    return [h for lg in loggers for h in lg.handlers if isinstance(h, HANDLER_TYPES)]


def exporter_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("livekit-agents-exporter")}


async def endpoint_answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(url) as resp:
                return resp.status == 200
    except aiohttp.ClientError:
        return False


async def dispatch_jobs(sim: Any, n: int) -> None:
    for _ in range(n):
        result = await sim.dispatch(agent_name="agent", metadata={"duration": 0.1})
        assert result.outcome == "assigned", result


@pytest.mark.parametrize("style", STYLES)
async def test_close_undoes_instrument_and_the_worker_keeps_taking_jobs(sim, style):
    handlers_before, threads_before = exporter_handlers(), exporter_threads()
    load = CountingLoad()
    async with run_worker(sim, style, load_fnc=load, on_request=accept) as w:
        exporter = w.exporter
        assert exporter is not None and exporter.url is not None
        await dispatch_jobs(sim, 2)
        truth = sim.truth.workers[w.worker_id]
        await eventually(lambda: truth.jobs_finished >= 2, timeout=30, what="two jobs to end")
        await eventually(lambda: exporter.registry.get_sample_value(
            "livekit_agents_jobs_finished_total", {"agent_name": "agent"}) == 2,
            what="the two jobs counted")
        assert len(exporter_handlers()) == len(handlers_before) + 2

        exporter.close()
        exporter.close()  # idempotent
        frozen = counted_samples(exporter)
        assert exporter.closed

        # what instrument() put into the worker is gone or passes straight through
        view = sdk.WorkerView(w.worker)
        assert view.get_load_fnc() is load
        assert view.get_request_fnc() is accept
        assert view.get_entrypoint() is synthetic_entrypoint
        assert "run" not in vars(w.worker)
        tapped = set(sdk.PROTOCOL_METHODS.values()) & set(vars(w.worker))
        assert not tapped, f"wire taps left on the worker: {tapped}"
        assert len(exporter_handlers()) == len(handlers_before)
        assert not await endpoint_answers(exporter.url)
        await eventually(lambda: exporter_threads() <= threads_before, timeout=10,
                         what="the exporter's threads to end")

        # the worker keeps working: offers answered, jobs run, load sampled ...
        calls = load.calls
        await dispatch_jobs(sim, 3)
        await eventually(lambda: truth.jobs_finished >= 5, timeout=30, what="three more jobs")
        await eventually(lambda: load.calls >= calls + 3, timeout=10,
                         what="the SDK to call load_fnc again")
        # ... and nothing of it is counted or queued, even were a hook still to report
        exporter.recorder.request_received("after-close")
        assert exporter.recorder.queued == 0
        assert counted_samples(exporter) == frozen
        assert truth.first_answers(True) == 5


def test_close_takes_the_metrics_out_of_the_users_registry():
    registry = CollectorRegistry()
    opts = _unconnected_options("mine")
    exporter = instrument(opts, registry=registry)
    assert registry.get_sample_value("livekit_agents_worker_registered",
                                     {"agent_name": "mine"}) == 0
    exporter.close()
    left = [family.name for family in registry.collect()]
    assert left == [], f"still in the user's registry after close(): {left}"


def test_dropped_options_take_their_exporter_with_them():
    """The exporter of options is found through a weak mapping: nothing keeps it alive."""
    opts = _unconnected_options("gone")
    exporter = instrument(opts, registry=CollectorRegistry())
    exporter.close()
    handle = weakref.ref(exporter)
    del exporter, opts
    deadline = time.monotonic() + 10  # the watchdog thread ends within a poll interval
    while handle() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert handle() is None, gc.get_referrers(handle())


def test_a_closed_target_can_be_instrumented_again():
    opts = _unconnected_options("again")
    first = instrument(opts, registry=CollectorRegistry())
    first.close()
    assert not isinstance(opts.load_fnc, ObservedLoadFnc), "close() left the options wrapped"
    second = instrument(opts, registry=CollectorRegistry())
    try:
        assert second is not first and not second.closed
        assert isinstance(opts.load_fnc, ObservedLoadFnc)
    finally:
        second.close()


@pytest.mark.parametrize("executor", [JobExecutorType.THREAD, JobExecutorType.PROCESS])
async def test_entrypoint_errors_after_close_are_not_counted(sim, executor, caplog):
    async with run_worker(sim, executor=executor, num_idle=1) as w:
        exporter = w.exporter
        assert exporter is not None
        exporter.close()
        frozen = counted_samples(exporter)
        failing = await sim.dispatch(agent_name="agent",
                                     metadata={"duration": 0.1, "fail": "raise"})
        assert failing.outcome == "assigned", failing
        await dispatch_jobs(sim, 1)
        truth = sim.truth.workers[w.worker_id]
        # the job's failure event travels with the SDK's own record of it: once that is here,
        # the event was delivered too, and an exporter still counting would have counted it
        await sdk_logged(caplog, SDK_ENTRYPOINT_ERROR)
        if not NEW_SDK:  # 1.2.18 leaves a job whose entrypoint raised running: end it
            await eventually(lambda: truth.jobs_started >= 2, timeout=30, what="both jobs")
            await sim.terminate_job(failing.job_id, failing.worker_id)
        await eventually(lambda: truth.jobs_finished >= 2, timeout=30, what="both jobs to end")
        assert counted_samples(exporter) == frozen
        assert exporter.recorder.queued == 0
