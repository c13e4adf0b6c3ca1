"""Harness for driving a real livekit-agents worker against the dispatch simulator.

The exporter, reliability and security suites run a real worker from PyPI
(AgentServer on 1.3+, Worker on 1.2), instrumented by the exporter, against the
protocol-faithful simulator, and compare what ``/metrics`` says with what the
simulator saw on the wire. A module of its own name, not a conftest, so that every
suite can import it whatever conftest pytest loaded last.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from livekit.agents import JobExecutorType
from livekit.agents import worker as sdk_worker
from prometheus_client.parser import text_string_to_metric_families

from livekit_agents_exporter import Exporter, instrument, sdk
from livekit_agents_exporter.simulator import Simulator, SimulatorConfig
from livekit_agents_exporter.synthetic import SlotLoad, synthetic_entrypoint

API_KEY = "test-key"
API_SECRET = "test-secret-that-is-long-enough-for-hs256"
NEW_SDK = hasattr(sdk_worker, "AgentServer")
STYLES = ("agent_server", "options") if NEW_SDK else ("worker", "options")


class Samples:
    """A parsed scrape: ``value(name, **labels)`` with 0 for an absent series."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                self.samples.append((s.name, dict(s.labels), s.value))

    def find(self, name: str, **labels: str) -> list[float]:
        return [v for n, lab, v in self.samples
                if n == name and all(lab.get(k) == want for k, want in labels.items())]

    def value(self, name: str, **labels: str) -> float:
        found = self.find(name, **labels)
        return sum(found) if found else 0.0

    def has(self, name: str) -> bool:
        return bool(self.find(name))


async def scrape(exporter: Exporter) -> Samples:
    assert exporter.url is not None
    # a bounded wait: a scrape that hangs must fail here, not stall until the suite's timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.get(exporter.url) as resp:
            assert resp.status == 200
            return Samples(await resp.text())


async def eventually(predicate: Callable[[], Any], timeout: float = 15.0,
                     what: str = "condition") -> Any:
    """Wait for a (possibly async) condition instead of sleeping a fixed time."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


# what the SDK logs (in the job's process, forwarded to the worker's) when an entrypoint raises
SDK_ENTRYPOINT_ERROR = "unhandled exception while running the job task"


async def sdk_logged(caplog: pytest.LogCaptureFixture, message: str, timeout: float = 30.0
                     ) -> None:
    """Wait until the SDK has logged ``message``. A job process's records cross to the worker
    on the SDK's log listener thread, after the job's end crossed the wire: a test that stops
    at the job's end can finish before they arrive, and assert on counts not yet made."""
    await eventually(lambda: any(message in r.getMessage() for r in caplog.records),
                     timeout, f"the SDK to log {message!r}")


@dataclass
class RunningWorker:
    worker: Any
    exporter: Exporter | None
    task: asyncio.Task[Any]

    @property
    def worker_id(self) -> str:
        return self.worker.id

    async def scrape(self) -> Samples:
        assert self.exporter is not None, "this worker runs without the exporter"
        return await scrape(self.exporter)

    async def metric(self, name: str, **labels: str) -> float:
        return (await self.scrape()).value(name, **labels)


class Knobs:
    """Mutable load value shared with the worker's load_fnc."""

    def __init__(self, load: float = 0.0) -> None:
        self.load = load

    def __call__(self) -> float:
        return self.load


def _build(style: str, sim: Simulator, **kw: Any) -> tuple[Any, Any]:
    """Build a worker the way users do; returns (object to instrument, worker)."""
    common = dict(load_fnc=kw.pop("load_fnc"), load_threshold=kw.pop("threshold"),
                  num_idle_processes=kw.pop("num_idle"), ws_url=sim.url, api_key=API_KEY,
                  api_secret=API_SECRET, port=0, job_memory_limit_mb=kw.pop("memory_limit_mb", 0))
    executor = kw.pop("executor", JobExecutorType.THREAD)
    agent_name, on_request = kw.pop("agent_name"), kw.pop("on_request")
    entrypoint = kw.pop("entrypoint", synthetic_entrypoint)
    assert not kw, kw
    if style == "agent_server":  # the 1.3+ way: decorate an AgentServer
        server = sdk_worker.AgentServer(job_executor_type=executor, **common)
        server.rtc_session(entrypoint, agent_name=agent_name, on_request=on_request)
        return server, server
    opts = sdk.worker_options(entrypoint, agent_name=agent_name, request_fnc=on_request,
                              executor=JobExecutorType(executor).value, **common)
    if style == "options":
        return opts, None
    return sdk.build_worker(opts), None  # "worker": the 1.2 way, Worker(opts)


def _worker_from_options(opts: Any) -> Any:
    """What ``cli.run_app(opts)`` does before it runs the worker."""
    return sdk.build_worker(opts)


@contextlib.asynccontextmanager
async def run_worker(sim: Simulator, style: str = STYLES[0], *, agent_name: str = "agent",
                     load_fnc: Any = None, threshold: float = 0.7, on_request: Any = None,
                     executor: JobExecutorType = JobExecutorType.THREAD, num_idle: int = 2,
                     wait_registered: bool = True, instrumented: bool = True,
                     web_config: Any = None, **kw: Any) -> AsyncIterator[RunningWorker]:
    target, worker = _build(style, sim, agent_name=agent_name,
                            load_fnc=load_fnc or SlotLoad(4), threshold=threshold,
                            on_request=on_request, executor=executor, num_idle=num_idle, **kw)
    exporter = (instrument(target, host="127.0.0.1", port=0, web_config=web_config)
                if instrumented else None)
    if worker is None:
        worker = _worker_from_options(target) if style == "options" else target
    task = asyncio.create_task(sdk.run_worker(worker))
    running = RunningWorker(worker, exporter, task)
    try:
        if wait_registered:
            await eventually(lambda: worker.id != "unregistered", what="registration")
            await sim.wait_for_workers(1, agent_name=agent_name, timeout=15)
        yield running
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker.aclose(), 30)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        if exporter is not None:
            exporter.close()


def isnan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)


@dataclass
class LagStats:
    samples: list[float] = field(default_factory=list)

    def quantile(self, q: float) -> float:
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50(self) -> float:
        return self.quantile(0.5)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    @property
    def max(self) -> float:
        return max(self.samples, default=0.0)

    def describe(self) -> str:
        mean = statistics.fmean(self.samples) if self.samples else 0.0
        return (f"n={len(self.samples)} mean={mean * 1000:.2f}ms p50={self.p50 * 1000:.2f}ms "
                f"p99={self.p99 * 1000:.2f}ms max={self.max * 1000:.2f}ms")


class LagProbe:
    """Measures how late the running event loop wakes a 10 ms sleep (its scheduling lag)."""

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.stats = LagStats()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.period)
            self.stats.samples.append(max(0.0, loop.time() - start - self.period))

    def __enter__(self) -> LagProbe:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET,
                                          host="127.0.0.1", port=0, seed=7))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
def short_assignment_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(sdk_worker, "ASSIGNMENT_TIMEOUT", 1.0)
    return 1.0
