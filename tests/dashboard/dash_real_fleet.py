"""A real instrumented fleet for the dashboard's live queries.

Real livekit-agents workers, each instrumented with ``instrument()``, registered with
the dispatch simulator and driven by it, in two clusters, two namespaces and three
agent names (one of them the empty name of automatic dispatch). The traffic is
chosen so that every panel has something to show: jobs that run and end, jobs that
fail in the entrypoint and by process exit, refusals, assignment timeouts, a job
process with a memory limit, and one agent ("sales") kept saturated so the pack's
no-capacity alert fires.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livekit.agents import JobExecutorType
from livekit.agents import worker as sdk_worker

import worker_harness as harness

ASSIGNMENT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class FleetWorker:
    name: str
    agent_name: str
    labels: dict[str, str]
    options: dict[str, Any]


FLEET = (
    FleetWorker("eu-support-1", "support", {"cluster": "eu", "namespace": "voice"},
                {"executor": JobExecutorType.PROCESS, "num_idle": 1, "memory_limit_mb": 512}),
    FleetWorker("eu-support-2", "support", {"cluster": "eu", "namespace": "voice"}, {}),
    FleetWorker("us-support-1", "support", {"cluster": "us", "namespace": "voice"}, {}),
    FleetWorker("eu-auto-1", "", {"cluster": "eu", "namespace": "batch"}, {}),
    FleetWorker("eu-sales-1", "sales", {"cluster": "eu", "namespace": "batch"}, {}),
)


class RealFleet:
    """Runs the simulator, the workers and the traffic on an event loop of its own."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="dashboard-fleet")
        self._stack = contextlib.AsyncExitStack()
        self.running: dict[str, harness.RunningWorker] = {}
        self._traffic: asyncio.Task[None] | None = None

    def _call(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> RealFleet:
        self._old_timeout = sdk_worker.ASSIGNMENT_TIMEOUT
        sdk_worker.ASSIGNMENT_TIMEOUT = ASSIGNMENT_TIMEOUT_S
        self._thread.start()
        try:
            self._call(self._start())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self._call(self._stop(), timeout=120)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        sdk_worker.ASSIGNMENT_TIMEOUT = self._old_timeout

    async def _start(self) -> None:
        # the server's dispatch log, read by the documented filter -> mtail pipeline
        from binaries import require_binary
        from livekit_agents_exporter.server_log.pipeline import ServerLogPipeline

        workdir = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="lkx-dash-")))
        log = workdir / "livekit-server.log"
        log.touch()
        self.server_log = ServerLogPipeline(log, workdir / "server-log",
                                            mtail_binary=require_binary("mtail", "mtail"))
        await asyncio.to_thread(self.server_log.start)
        self._stack.callback(self.server_log.stop)
        self.sim = harness.Simulator(harness.SimulatorConfig(
            api_key=harness.API_KEY, api_secret=harness.API_SECRET, seed=11,
            server_log=str(log)))
        await self.sim.start()
        self._stack.push_async_callback(self.sim.stop)
        for spec in FLEET:
            # SlotLoad(2): one job is load 0.5 (available), two are 1.0 (full)
            w = await self._stack.enter_async_context(harness.run_worker(
                self.sim, agent_name=spec.agent_name,
                load_fnc=harness.SlotLoad(2), **spec.options))
            self.running[spec.name] = w
        self._traffic = asyncio.ensure_future(self._drive())

    async def _stop(self) -> None:
        if self._traffic is not None:
            self._traffic.cancel()
            await asyncio.gather(self._traffic, return_exceptions=True)
        await self._stack.aclose()

    async def _drive(self) -> None:
        sim, process_worker = self.sim, self.running["eu-support-1"]
        # one-offs first: a job process that dies, an accept the server never assigns
        await sim.offer(process_worker.worker_id, "support", {"duration": 0.5, "fail": "exit"})
        await sim.offer(self.running["eu-support-2"].worker_id, "support", {"duration": 1},
                        assign=False)
        jobs = itertools.count()
        while True:
            n = next(jobs)
            fail = "raise" if n % 5 == 0 else None
            await asyncio.gather(
                sim.dispatch("support", {"duration": 1.5, **({"fail": fail} if fail else {})}),
                sim.dispatch("", {"duration": 1.0}),
                # "sales" has one worker with two slots and gets long jobs: it stays full
                sim.dispatch("sales", {"duration": 30.0}),
                return_exceptions=True)
            await asyncio.sleep(0.4)

    def targets(self) -> list[tuple[dict[str, str], list[str]]]:
        groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for spec in FLEET:
            url = self.running[spec.name].exporter.url
            address = url.split("//", 1)[1].split("/", 1)[0]
            groups.setdefault(tuple(sorted(spec.labels.items())), []).append(address)
        return [(dict(labels), addresses) for labels, addresses in groups.items()]

    def server_log_target(self) -> str:
        """mtail's address: the server-log series (job livekit-server-log)."""
        return self.server_log.target


@contextlib.contextmanager
def real_fleet() -> Iterator[RealFleet]:
    with RealFleet() as fleet:
        yield fleet
