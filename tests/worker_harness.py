"""Shared by the security and reliability suites: the exporter suite's worker harness,
a plain (uninstrumented) worker for comparisons, and an event-loop lag probe.

The harness in ``tests/exporter/conftest.py`` drives a real livekit-agents worker
against the dispatch simulator; it is loaded here under its own module name so that
other suites can use it without clashing with their own ``conftest``. Until the
simulator is importable, the ``sim`` fixture skips the tests that need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import statistics
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HARNESS_PATH = Path(__file__).resolve().parent / "exporter" / "conftest.py"

try:
    import livekit_agents_exporter.simulator  # noqa: F401
    SIM_MISSING: str | None = None
except ImportError as exc:  # pragma: no cover - until the simulator lands
    SIM_MISSING = f"dispatch simulator not available: {exc}"


def _load_harness() -> Any:
    spec = importlib.util.spec_from_file_location("lkx_exporter_harness", HARNESS_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lkx_exporter_harness"] = module
    spec.loader.exec_module(module)
    return module


harness: Any = _load_harness() if SIM_MISSING is None else None


@pytest.fixture
async def sim() -> AsyncIterator[Any]:
    if harness is None:
        pytest.skip(SIM_MISSING)
    simulator = harness.Simulator(harness.SimulatorConfig(
        api_key=harness.API_KEY, api_secret=harness.API_SECRET, host="127.0.0.1", port=0, seed=7))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@contextlib.asynccontextmanager
async def run_plain_worker(sim: Any, *, agent_name: str = "plain", load_fnc: Any,
                           threshold: float = 0.7, num_idle: int = 1) -> AsyncIterator[Any]:
    """The same worker as ``harness.run_worker`` builds, without ``instrument()``."""
    target, worker = harness._build(harness.STYLES[1], sim, agent_name=agent_name,
                                    load_fnc=load_fnc, threshold=threshold, on_request=None,
                                    num_idle=num_idle)
    worker = harness._worker_from_options(target)
    run = worker.run(devmode=False) if harness.NEW_SDK else worker.run()
    task = asyncio.create_task(run)
    try:
        await harness.eventually(lambda: worker.id != "unregistered", what="registration")
        await sim.wait_for_workers(1, agent_name=agent_name, timeout=15)
        yield worker
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker.aclose(), 30)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


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
