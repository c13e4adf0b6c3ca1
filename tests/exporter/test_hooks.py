"""No silent blindness: every series exists from instrument() on, each hook reports whether
it attached, a moved SDK name costs only its own hook, and a worker whose run() was never
hooked is warned about once. Real workers against the simulator throughout."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from livekit_agents_exporter import instrument, instrumentation, sdk
from livekit_agents_exporter.metrics import EXPORTER_HOOKS
from worker_harness import NEW_SDK, STYLES, Knobs, _build, eventually, run_worker, scrape

HOOKS = "livekit_agents_exporter_hooks_attached"
ERRORS = "livekit_agents_exporter_errors_total"
BLIND_WARNING = "never went through the exporter's hook"


def hook_values(s, agent="agent"):
    return {hook: s.value(HOOKS, agent_name=agent, hook=hook) for hook in EXPORTER_HOOKS}


def records(caplog, text):
    return [r for r in caplog.records if text in r.getMessage()]


@pytest.mark.parametrize("style", STYLES)
async def test_series_exist_from_instrument_and_hooks_turn_on_at_run(sim, style):
    target, worker = _build(style, sim, agent_name="agent", load_fnc=Knobs(0.1), threshold=0.7,
                            on_request=None, num_idle=1)
    exporter = instrument(target, host="127.0.0.1", port=0)
    try:
        before = await scrape(exporter)
        assert hook_values(before) == dict.fromkeys(EXPORTER_HOOKS, 0.0), hook_values(before)
        assert before.find("livekit_agents_worker_registered", agent_name="agent") == [0.0]
        assert before.find("livekit_agents_job_requests_total", agent_name="agent") == [0.0]
        assert before.find("livekit_agents_worker_info", agent_name="agent") == [1.0]
        assert before.find("livekit_agents_worker_cloud_load_defaults", agent_name="agent") == [0.0]
    finally:
        exporter.close()
    # a worker built the same way, run: every hook attaches
    async with run_worker(sim, style) as w:
        s = await w.scrape()
        assert hook_values(s) == dict.fromkeys(EXPORTER_HOOKS, 1.0), hook_values(s)
        assert s.value("livekit_agents_worker_registered") == 1
        assert s.value(ERRORS, component="hooks") == 0


@pytest.mark.skipif(not NEW_SDK, reason="a 1.2 Worker takes its agent name from its options")
async def test_agent_name_given_after_instrument_moves_the_series(sim):
    from livekit.agents import worker as sdk_worker

    from livekit_agents_exporter.synthetic import synthetic_entrypoint
    from worker_harness import API_KEY, API_SECRET

    server = sdk_worker.AgentServer(ws_url=sim.url, api_key=API_KEY, api_secret=API_SECRET,
                                    port=0, load_threshold=0.7, num_idle_processes=1,
                                    job_executor_type=sdk_worker.JobExecutorType.THREAD)
    exporter = instrument(server, host="127.0.0.1", port=0)
    server.rtc_session(synthetic_entrypoint, agent_name="late-name")
    try:
        assert (await scrape(exporter)).find("livekit_agents_worker_registered",
                                             agent_name="") == [0.0]
        task = asyncio.create_task(server.run(devmode=False))
        await sim.wait_for_workers(1, agent_name="late-name", timeout=15)
        s = await scrape(exporter)
        assert s.find("livekit_agents_worker_registered", agent_name="late-name") == [1.0]
        assert s.find("livekit_agents_worker_registered", agent_name="") == []
        assert s.value(HOOKS, agent_name="late-name", hook="worker_run") == 1
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.aclose(), 30)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        exporter.close()


async def test_worker_whose_run_was_taken_before_instrument_is_reported_blind(
        sim, monkeypatch, caplog):
    monkeypatch.setattr(instrumentation, "RUN_HOOK_GRACE_S", 1.0)
    caplog.set_level(logging.WARNING, logger="livekit_agents_exporter")
    target, _ = _build(STYLES[0], sim, agent_name="agent", load_fnc=Knobs(0.1), threshold=0.7,
                       on_request=None, num_idle=1)
    run = target.run  # held before instrument(), as `run = server.run` would
    exporter = instrument(target, host="127.0.0.1", port=0)
    task = asyncio.create_task(run(devmode=False) if NEW_SDK else run())
    try:
        await sim.wait_for_workers(1, agent_name="agent", timeout=15)
        result = await sim.dispatch(agent_name="agent", metadata={"duration": 0.1})
        assert result.outcome == "assigned"  # the worker works, unobserved
        watchdog = exporter.watchdog
        await eventually(lambda: watchdog.done, timeout=15, what="the watchdog to finish")
        assert watchdog.warned
        s = await scrape(exporter)
        assert s.find("livekit_agents_worker_registered", agent_name="agent") == [0.0]
        assert hook_values(s) == dict.fromkeys(EXPORTER_HOOKS, 0.0), hook_values(s)
        assert s.find("livekit_agents_job_requests_total", agent_name="agent") == [0.0]
        warnings = records(caplog, BLIND_WARNING)
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "run = server.run" in warnings[0].getMessage()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(target.aclose(), 30)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        exporter.close()


async def test_options_whose_worker_is_built_from_other_options_are_reported_blind(
        sim, monkeypatch, caplog):
    from worker_harness import _worker_from_options

    monkeypatch.setattr(instrumentation, "RUN_HOOK_GRACE_S", 1.0)
    caplog.set_level(logging.WARNING, logger="livekit_agents_exporter")
    kw = dict(agent_name="agent", load_fnc=Knobs(0.1), threshold=0.7, on_request=None,
              num_idle=1)
    instrumented, _ = _build("options", sim, **kw)
    other, _ = _build("options", sim, **kw)  # what actually runs: never instrumented
    exporter = instrument(instrumented, host="127.0.0.1", port=0)
    worker = _worker_from_options(other)
    task = asyncio.create_task(sdk.run_worker(worker))
    try:
        await sim.wait_for_workers(1, agent_name="agent", timeout=15)
        watchdog = exporter.watchdog
        await eventually(lambda: watchdog.done, timeout=15, what="the watchdog to finish")
        assert watchdog.warned
        s = await scrape(exporter)
        assert hook_values(s) == dict.fromkeys(EXPORTER_HOOKS, 0.0), hook_values(s)
        warnings = records(caplog, "not one built from the instrumented WorkerOptions")
        assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker.aclose(), 30)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        exporter.close()


async def test_hooked_worker_is_not_warned_about(sim, monkeypatch, caplog):
    monkeypatch.setattr(instrumentation, "RUN_HOOK_GRACE_S", 0.5)
    async with run_worker(sim) as w:
        watchdog = w.exporter.watchdog
        await eventually(lambda: watchdog.done, timeout=10, what="the watchdog to finish")
        assert not watchdog.warned
    assert records(caplog, BLIND_WARNING) == []


def _moved_protocol_method(monkeypatch, hook):
    monkeypatch.setitem(sdk.PROTOCOL_METHODS, hook, sdk.PROTOCOL_METHODS[hook] + "_moved")


def _moved_accessor(accessor):
    def move(monkeypatch, _hook):
        def gone(self, *args):
            raise AttributeError(f"'{type(self.worker).__name__}' object has no attribute "
                                 f"'{accessor}' (moved in this release)")
        monkeypatch.setattr(sdk.WorkerView, accessor, gone)
    return move


MOVES = {
    **{hook: _moved_protocol_method for hook in sdk.PROTOCOL_METHODS},
    "load_fnc": _moved_accessor("get_load_fnc"),
    "request_fnc": _moved_accessor("get_request_fnc"),
    "entrypoint": _moved_accessor("get_entrypoint"),
}


@pytest.mark.parametrize("hook", sorted(MOVES))
async def test_a_moved_sdk_name_switches_off_its_hook_alone(sim, monkeypatch, caplog, hook):
    """The SDK keeps working under its own names; the exporter looks for one that is gone."""
    caplog.set_level(logging.WARNING, logger="livekit_agents_exporter")
    MOVES[hook](monkeypatch, hook)
    # the instance style: the options style finds its worker through the request handler
    async with run_worker(sim, STYLES[0]) as w:
        results = [await sim.dispatch(agent_name="agent", metadata={"duration": 0.1})
                   for _ in range(2)]
        assert [r.outcome for r in results] == ["assigned"] * 2
        await eventually(lambda: sim.truth.workers[w.worker_id].jobs_finished >= 2,
                         what="both jobs to finish on the wire")
        s = await w.scrape()
        expected = {h: 0.0 if h == hook else 1.0 for h in EXPORTER_HOOKS}
        assert hook_values(s) == expected, hook_values(s)
        assert s.value(ERRORS, component="hooks") == 1
        if hook != "outgoing":
            # what the other hooks see is still counted
            assert s.value("livekit_agents_job_requests_accepted_total") == 2
    warnings = records(caplog, f"hook {hook!r} not attached")
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert sdk.SDK_VERSION in warnings[0].getMessage()


def test_outside_the_tested_range_warns_once(monkeypatch, caplog):
    from livekit.agents import worker as sdk_worker
    from prometheus_client import CollectorRegistry

    caplog.set_level(logging.WARNING, logger="livekit_agents_exporter")
    monkeypatch.setattr(sdk, "SDK_VERSION", "1.9.0+warns-once")  # a version of this test's own
    exporters = []
    try:
        for _ in range(2):
            opts = sdk_worker.WorkerOptions(entrypoint_fnc=_entrypoint, agent_name="a")
            exporters.append(instrument(opts, registry=CollectorRegistry()))
    finally:
        for e in exporters:
            e.close()
    warnings = records(caplog, "is tested with livekit-agents")
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    message = warnings[0].getMessage()
    assert ">=1.2,<1.9" in message and "1.9.0+warns-once is installed" in message
    assert "livekit_agents_exporter_hooks_attached" in message


def test_inside_the_tested_range_says_nothing(monkeypatch, caplog):
    from livekit.agents import worker as sdk_worker
    from prometheus_client import CollectorRegistry

    assert sdk.version_in_range(sdk.SDK_VERSION), sdk.SDK_VERSION
    opts = sdk_worker.WorkerOptions(entrypoint_fnc=_entrypoint, agent_name="a")
    instrument(opts, registry=CollectorRegistry()).close()
    assert records(caplog, "is tested with livekit-agents") == []


@pytest.mark.parametrize("version,inside", [
    ("1.2.0", True), ("1.2.18", True), ("1.8.9", True), ("1.8.10rc1", True),
    ("1.1.7", False), ("1.9.0", False), ("2.0", False), ("unknown", False)])
def test_tested_range_bounds(version, inside):
    assert sdk.version_in_range(version) is inside


async def _entrypoint(ctx):  # pragma: no cover - never run
    pass
