"""The load function: samples, bad values and errors never change the worker's behaviour."""

from __future__ import annotations

import asyncio
import inspect
import math

import pytest
from prometheus_client import CollectorRegistry

from livekit_agents_exporter import InstrumentationError, instrument
from livekit_agents_exporter.load_probe import ObservedLoadFnc
from livekit_agents_exporter.recorder import Recorder
from livekit_agents_exporter.safety import ErrorSink
from worker_harness import Knobs, eventually, isnan, run_worker

ERRORS = "livekit_agents_load_fnc_errors_total"


def _probe(fn):
    registry = CollectorRegistry()
    recorder = Recorder(registry, ErrorSink())
    recorder.bind("a", {}, {})
    return ObservedLoadFnc(fn, recorder, ErrorSink()), registry


@pytest.mark.parametrize("value, error, exported", [
    (float("nan"), "nan", math.nan),
    (-0.5, "out_of_range", -0.5),
    (1.7, "out_of_range", 1.7),
    ("high", "non_numeric", math.nan),
    (None, "non_numeric", math.nan),
    (True, "non_numeric", math.nan),
])
def test_bad_values_are_returned_unchanged_and_counted(value, error, exported):
    probe, registry = _probe(lambda: value)
    assert probe(None) is value
    assert registry.get_sample_value(ERRORS, {"agent_name": "a", "error": error}) == 1
    got = registry.get_sample_value("livekit_agents_worker_load_ratio", {"agent_name": "a"})
    assert (isnan(got) and isnan(exported)) or got == exported


def test_raising_load_fnc_reraises_the_same_exception():
    boom = ValueError("sensor offline")

    def load():
        raise boom

    probe, registry = _probe(load)
    with pytest.raises(ValueError) as caught:
        probe(None)
    assert caught.value is boom
    assert registry.get_sample_value(ERRORS, {"agent_name": "a", "error": "exception"}) == 1


def test_worker_argument_is_passed_like_the_sdk_does():
    seen = []
    probe, _ = _probe(lambda worker: seen.append(worker) or 0.25)
    assert probe("the-worker") == 0.25
    assert seen == ["the-worker"]


def test_sdk_signature_inspection_sees_one_parameter_whatever_the_user_function_takes():
    """The SDK inspects load_fnc's signature on every call to decide what to pass."""
    for fn in (lambda: 0.1, lambda worker: 0.1, lambda *args: 0.1):
        probe, _ = _probe(fn)
        params = list(inspect.signature(probe).parameters.values())
        assert [p.name for p in params] == ["worker"] and params[0].default is None
    assert probe.__signature__ is _probe(lambda: 0.1)[0].__signature__  # built once, not per call


def test_async_load_fnc_is_refused_at_instrumentation(sim_free_options):
    async def load() -> float:
        return 0.5

    sim_free_options.load_fnc = load
    with pytest.raises(InstrumentationError, match="async def"):
        instrument(sim_free_options, port=None)


@pytest.fixture
def sim_free_options():
    from livekit.agents import worker as sdk_worker

    from livekit_agents_exporter.synthetic import synthetic_entrypoint

    return sdk_worker.WorkerOptions(entrypoint_fnc=synthetic_entrypoint, ws_url="ws://127.0.0.1:1",
                                    api_key="k", api_secret="s")


async def test_samples_reach_histogram_and_gauge_on_a_live_worker(sim):
    knobs = Knobs(0.35)
    async with run_worker(sim, load_fnc=knobs) as w:
        await eventually(lambda: _samples(w, 3), what="load samples")
        s = await w.scrape()
        assert s.value("livekit_agents_worker_load_ratio") == 0.35
        assert s.value("livekit_agents_worker_load_samples_ratio_bucket", le="0.35") >= 3
        assert s.value("livekit_agents_worker_load_samples_ratio_bucket", le="0.3") == 0
        assert s.value("livekit_agents_load_fnc_duration_seconds_count") >= 3


async def _samples(w, n):
    return await w.metric("livekit_agents_worker_load_samples_ratio_count") >= n


async def test_failing_load_fnc_leaves_the_worker_as_the_sdk_leaves_it(sim):
    """Same fault, with and without the exporter: the server sees the same worker.

    The SDKs differ (1.8 stops updating the load, 1.2 stops the worker); the exporter
    must change neither, and must count the error.
    """
    outcomes = {}
    for instrumented in (False, True):
        agent = f"flaky-{instrumented}"
        flaky = FlakyLoad()
        async with run_worker(sim, agent_name=agent, load_fnc=flaky,
                              instrumented=instrumented) as w:
            await eventually(lambda f=flaky: f.calls >= 3, what="the faulty call")
            await asyncio.sleep(3)  # one status interval, so that a stopped loop would show
            truth = sim.truth.for_agent(agent)[0]
            outcomes[instrumented] = (w.task.done(), truth.connected)
            if instrumented:
                s = await w.scrape()
                assert s.value(ERRORS, error="exception") == 1
                assert s.value("livekit_agents_worker_registered") == (1 if truth.connected else 0)
    assert outcomes[True] == outcomes[False]


class FlakyLoad:
    """0.1, except that its third call raises (a load sensor glitch)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("load sensor glitch")
        return 0.1


def test_an_int_beyond_any_float_is_an_out_of_range_load_not_an_exporter_error():
    big = 10**400
    probe, registry = _probe(lambda: big)
    assert probe(None) is big
    assert registry.get_sample_value(ERRORS, {"agent_name": "a", "error": "out_of_range"}) == 1
    assert registry.get_sample_value("livekit_agents_exporter_errors_total",
                                     {"agent_name": "a", "component": "load_fnc"}) == 0
    assert registry.get_sample_value("livekit_agents_worker_load_ratio",
                                     {"agent_name": "a"}) == math.inf


def test_one_absurd_sample_does_not_own_the_load_histogram_sum():
    values = iter([1e308, 0.5, 0.25])
    probe, registry = _probe(lambda: next(values))
    for _ in range(3):
        probe(None)
    hist = "livekit_agents_worker_load_samples_ratio"
    assert registry.get_sample_value(f"{hist}_sum", {"agent_name": "a"}) == 0.75
    assert registry.get_sample_value(f"{hist}_count", {"agent_name": "a"}) == 2
    assert registry.get_sample_value(ERRORS, {"agent_name": "a", "error": "out_of_range"}) == 1
