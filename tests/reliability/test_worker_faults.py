"""Faults in and around a real instrumented worker: the worker keeps working, metrics stay true.

Each test drives a real livekit-agents worker against the dispatch simulator, injects
one fault, and checks three things: the worker keeps accepting jobs, the scraped
series agree with the simulator's record of what crossed the wire, and nothing was
lost or counted twice. SDK behaviour the exporter merely reports (observed on 1.2.18
and 1.8.9) is spelled out where a test depends on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from livekit.agents import JobExecutorType

import worker_harness as harness
from livekit_agents_exporter import sdk
from worker_harness import LagProbe

LOAD_SCRIPT = Path(__file__).with_name("http_load.py")
ERRORS = "livekit_agents_exporter_errors_total"
LOAD_ERRORS = "livekit_agents_load_fnc_errors_total"


def eventually(*args, **kwargs):
    return harness.eventually(*args, **kwargs)


class ScriptedLoad:
    """A load_fnc whose next values the test sets, keeping its own tally of what it returned."""

    def __init__(self, value: float = 0.25) -> None:
        self.value: float | None = value  # None: raise
        self.tally: Counter[str] = Counter()
        self.calls = 0
        self._release = threading.Event()
        self._release.set()
        self.blocked = 0

    def hang(self) -> None:
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    def __call__(self) -> float:
        self.calls += 1
        if not self._release.is_set():
            self.blocked += 1
            self._release.wait(30)
        value = self.value
        if value is None:
            self.tally["exception"] += 1
            raise RuntimeError("injected: load sensor failed")
        if math.isnan(value):
            self.tally["nan"] += 1
        elif not 0 <= value <= 1:
            self.tally["out_of_range"] += 1
        else:
            self.tally["good"] += 1
        return value


async def load_gauge_is(w, expected: float) -> bool:
    got = await w.metric("livekit_agents_worker_load_ratio")
    return (math.isnan(got) and math.isnan(expected)) or got == expected


async def assert_wire_truth(sim, w, *worker_ids: str) -> None:
    """Offer/answer/assignment counters equal the simulator's record over all connections."""
    ids = worker_ids or (w.worker_id,)
    truth = [sim.truth.workers[i] for i in ids if i in sim.truth.workers]
    s = await w.scrape()
    offered = sum(t.availability_requests for t in truth)
    assert s.value("livekit_agents_job_requests_total") == offered
    assert s.value("livekit_agents_job_requests_accepted_total") == sum(t.answers_available
                                                                        for t in truth)
    assert s.value("livekit_agents_job_requests_rejected_total") == sum(t.answers_unavailable
                                                                        for t in truth)
    assert s.value("livekit_agents_job_assignments_total") == sum(t.assignments_sent for t in truth)


async def dispatch_ok(sim, agent_name="agent", duration=0.2):
    result = await sim.dispatch(agent_name=agent_name, metadata={"duration": duration})
    assert result.outcome == "assigned", result.outcome
    return result


# -- load_fnc ---------------------------------------------------------------------------------
async def test_load_fnc_garbage_then_recovery(sim):
    """Gauges follow every value; each bad call is counted once; the worker accepts jobs after."""
    load = ScriptedLoad(0.25)
    async with harness.run_worker(sim, load_fnc=load) as w:
        await eventually(lambda: load_gauge_is(w, 0.25), what="first sample")
        for bad in (math.nan, 1.7, -0.5):
            load.value = bad
            await eventually(lambda bad=bad: load_gauge_is(w, bad), what=f"gauge to show {bad}")
        load.value = 0.3
        await eventually(lambda: load_gauge_is(w, 0.3), what="recovery")
        # the bad tallies are final now; a sample may still be in flight, so compare until equal
        assert load.tally["nan"] >= 1 and load.tally["out_of_range"] >= 2

        async def counted_exactly() -> bool:
            s = await w.scrape()
            return (s.value(LOAD_ERRORS, error="nan") == load.tally["nan"]
                    and s.value(LOAD_ERRORS, error="out_of_range") == load.tally["out_of_range"]
                    and s.value(LOAD_ERRORS, error="exception") == 0
                    # every finite sample enters the histogram, NaN never
                    and s.value("livekit_agents_worker_load_samples_ratio_count")
                    == load.tally["good"] + load.tally["out_of_range"])

        await eventually(counted_exactly, what="each bad call counted once")
        await dispatch_ok(sim)
        await eventually(lambda: sim.truth.workers[w.worker_id].jobs_finished >= 1)
        await assert_wire_truth(sim, w)
        assert await w.metric("livekit_agents_worker_registered") == 1


async def test_load_fnc_that_raises_then_recovers(sim):
    """Each raise is counted. Both SDKs end their periodic load loop at the first raise
    (it is wrapped in log_exceptions, which re-raises): on 1.8 the load then only moves
    when it is refreshed before an offer; on 1.2 the whole worker stops. The exporter
    shows either: the sample count stops, the registered gauge drops."""
    load = ScriptedLoad(0.2)
    async with harness.run_worker(sim, load_fnc=load) as w:
        await eventually(lambda: load_gauge_is(w, 0.2), what="first sample")
        load.value = None
        await eventually(lambda: load.tally["exception"] >= 1, what="a raise")
        load.value = 0.2
        await eventually(lambda: w.metric(LOAD_ERRORS, error="exception"), what="the count")
        s = await w.scrape()
        assert s.value(LOAD_ERRORS, error="exception") == load.tally["exception"] == 1
        calls = load.calls
        await asyncio.sleep(1.5)  # three load intervals: the SDK's loop is gone
        assert load.calls == calls, "the SDK kept calling load_fnc after it raised"
        if sdk.AgentServer is None:
            # 1.2 gathers the load loop with the connection: the raise stops the worker,
            # and the exporter says so
            await eventually(lambda: w.task.done(), what="1.2 worker to stop")
            assert await w.metric("livekit_agents_worker_registered") == 0
            return
        await dispatch_ok(sim)  # the worker still takes jobs at its last known load
        await eventually(lambda: sim.truth.workers[w.worker_id].jobs_finished >= 1)
        await assert_wire_truth(sim, w)
        s = await w.scrape()
        assert s.value(LOAD_ERRORS, error="exception") == load.tally["exception"]
        assert s.value("livekit_agents_load_fnc_duration_seconds_count") == load.calls


async def test_hanging_load_fnc_the_exporter_adds_nothing(sim):
    """The SDK awaits load_fnc in the default thread executor: a hang blocks the periodic
    load loop (no new load values, status keeps the old one) and, on 1.8, every offer,
    which waits for its own load refresh. Run the same hang with and without the
    exporter: the same calls are made and the same offers wait; the scrape still answers."""

    async def scenario(instrumented: bool) -> dict:
        load = ScriptedLoad(0.1)
        name = "hang-exported" if instrumented else "hang-plain"
        async with harness.run_worker(sim, agent_name=name, load_fnc=load,
                                      instrumented=instrumented) as w:
            await eventually(lambda: load.calls >= 2, what="load samples")
            load.hang()
            await eventually(lambda: load.blocked >= 1, what="the periodic call to block")
            with LagProbe() as probe:
                offer = asyncio.create_task(sim.dispatch(agent_name=name,
                                                         metadata={"duration": 0.2}))
                scrape_s = None
                if instrumented:
                    start = time.perf_counter()
                    s = await w.scrape()
                    scrape_s = time.perf_counter() - start
                    assert s.value("livekit_agents_worker_load_ratio") == 0.1  # last known
                await asyncio.sleep(1.0)  # the hang lasts this long
                waiting = not offer.done()
                blocked = load.blocked
                load.release()
                outcome = (await offer).outcome
            if instrumented:
                await eventually(lambda: _slow_sample_recorded(w), what="the hang in the histogram")
        return {"offer_waited": waiting, "outcome": outcome, "blocked_calls": blocked,
                "lag_p99": probe.stats.p99, "scrape_s": scrape_s}

    plain = await scenario(instrumented=False)
    exported = await scenario(instrumented=True)
    print(f"\nhanging load_fnc: plain {plain}\n                  exported {exported}")
    for key in ("offer_waited", "outcome", "blocked_calls"):
        assert plain[key] == exported[key], key
    assert exported["offer_waited"] == harness.NEW_SDK  # 1.8 refreshes the load per offer
    assert exported["scrape_s"] < 0.5
    assert exported["lag_p99"] < 0.05


async def _slow_sample_recorded(w) -> bool:
    s = await w.scrape()
    return (s.value("livekit_agents_load_fnc_duration_seconds_count")
            > s.value("livekit_agents_load_fnc_duration_seconds_bucket", le="0.5"))


# -- the connection to the server ------------------------------------------------------------------
class TcpProxy:
    """A loopback TCP relay between worker and simulator that the test can cut and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.up = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        """Drop every relayed connection abruptly (no close frame) and refuse new ones."""
        self.up = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.up = True

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()


class _ViaProxy:
    """The simulator, as seen by a worker that reaches it through a proxy."""

    def __init__(self, sim, proxy: TcpProxy) -> None:
        self._sim = sim
        parts = urlsplit(sim.url)
        self.url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))

    def __getattr__(self, name):
        return getattr(self._sim, name)


async def test_connection_drop_and_return(sim):
    """worker_registered follows 1 -> 0 -> 1, registrations count 2, a job running across
    the drop is counted once, and the counters match the wire over both connections."""
    parts = urlsplit(sim.url)
    proxy = TcpProxy(parts.hostname, parts.port)
    await proxy.start()
    try:
        async with harness.run_worker(_ViaProxy(sim, proxy)) as w:
            first_id = w.worker_id
            assert await w.metric("livekit_agents_worker_registered") == 1
            await dispatch_ok(sim, duration=3.0)  # still running when the link drops
            await eventually(lambda: w.metric("livekit_agents_jobs_launched_total"))
            proxy.cut()
            await eventually(lambda: _registered_is(w, 0), what="registered to drop to 0")
            s = await w.scrape()
            assert s.value("livekit_agents_worker_registrations_total") == 1
            proxy.restore()
            await eventually(lambda: _registered_is(w, 1), timeout=30, what="re-registration")
            await sim.wait_for_workers(1, agent_name="agent", timeout=15)
            second_id = w.worker_id
            await dispatch_ok(sim)
            await eventually(lambda: _finished(w, 2), timeout=30, what="both jobs to finish")
            s = await w.scrape()
            assert s.value("livekit_agents_worker_registrations_total") == 2
            assert s.value("livekit_agents_jobs_launched_total") == 2
            assert s.value("livekit_agents_jobs_finished_total") == 2
            assert s.value("livekit_agents_job_duration_seconds_count") == 2
            ids = (first_id, second_id) if first_id != second_id else (first_id,)
            await assert_wire_truth(sim, w, *ids)
    finally:
        await proxy.stop()


async def _registered_is(w, value: int) -> bool:
    return await w.metric("livekit_agents_worker_registered") == value


async def _finished(w, n: int) -> bool:
    return await w.metric("livekit_agents_jobs_finished_total") >= n


# -- job processes ---------------------------------------------------------------------------------
async def test_sigkilled_job_process_is_a_process_exit_failure(sim):
    async with harness.run_worker(sim, executor=JobExecutorType.PROCESS, num_idle=1) as w:
        await dispatch_ok(sim, duration=30.0)
        pid = await eventually(lambda: _running_job_pid(w.worker), timeout=30,
                               what="the job's process")
        os.kill(pid, signal.SIGKILL)
        await eventually(lambda: w.metric("livekit_agents_jobs_failed_total",
                                          reason="process_exit"),
                         timeout=30, what="the process_exit failure")
        await eventually(lambda: sim.truth.workers[w.worker_id].jobs_failed >= 1, timeout=10)
        await dispatch_ok(sim, duration=0.2)  # the worker keeps taking jobs
        await eventually(lambda: _finished(w, 2), timeout=30, what="the next job to finish")
        s = await w.scrape()
        assert s.value("livekit_agents_jobs_failed_total", reason="process_exit") == 1
        assert s.value("livekit_agents_jobs_failed_total") == 1 == sim.truth.workers[
            w.worker_id].jobs_failed
        assert s.value("livekit_agents_jobs_launched_total") == 2
        assert s.value("livekit_agents_worker_registered") == 1
        await assert_wire_truth(sim, w)


def _running_job_pid(worker) -> int | None:
    for proc in sdk.WorkerView(worker).job_executors():
        if getattr(proc, "running_job", None) is not None and isinstance(proc.pid, int):
            return proc.pid
    return None


# -- the exporter's own failures inside a worker ---------------------------------------------
async def test_endpoint_process_death_never_reaches_the_worker(sim):
    async with harness.run_worker(sim) as w:
        server = w.exporter.server
        os.kill(server.endpoint_pid, signal.SIGKILL)  # e.g. killed at its memory limit
        await dispatch_ok(sim)  # the worker is unaffected while the endpoint restarts
        await eventually(lambda: _scrape_ok(w), timeout=15, what="the endpoint to come back")
        await eventually(lambda: sim.truth.workers[w.worker_id].jobs_finished >= 1)
        s = await w.scrape()
        assert s.value(ERRORS, component="http_server") == 1
        assert server.restarts == 1
        await assert_wire_truth(sim, w)


async def _scrape_ok(w) -> bool:
    try:
        await w.scrape()
        return True
    except Exception:
        return False


async def test_failing_gauge_reader_and_collector_do_not_fail_the_scrape(sim, monkeypatch):
    def poisoned(view):
        raise RuntimeError("injected: an SDK attribute changed shape")

    # read at every scrape through the view the exporter builds when the worker runs
    monkeypatch.setattr(sdk.WorkerView, "memory_limit_bytes", poisoned)
    async with harness.run_worker(sim) as w:
        class Broken:
            def collect(self):
                raise RuntimeError("injected collector bug")

        w.exporter.registry.register(Broken())
        s = await w.scrape()
        assert math.isnan(s.value("livekit_agents_job_memory_limit_bytes"))
        assert s.value("livekit_agents_worker_registered") == 1
        await dispatch_ok(sim)
        s = await w.scrape()
        assert s.value(ERRORS, component="gauge") >= 1
        assert s.value(ERRORS, component="collector") >= 1
        await eventually(lambda: sim.truth.workers[w.worker_id].jobs_finished >= 1)
        await assert_wire_truth(sim, w)


# -- hostile clients while the worker works --------------------------------------------------
async def test_slowloris_leaves_the_worker_loop_and_dispatch_unaffected(sim):
    async with harness.run_worker(sim) as w:
        port = w.exporter.server.port
        with LagProbe() as idle:
            await asyncio.sleep(2.0)
        loop = asyncio.get_running_loop()
        with LagProbe() as attacked:
            attack = loop.run_in_executor(None, lambda: subprocess.run(
                [sys.executable, str(LOAD_SCRIPT), "127.0.0.1", str(port), "--slow", "200",
                 "--seconds", "8"], capture_output=True, text=True, timeout=70))
            outcomes = []
            while not attack.done():
                outcomes.append((await sim.dispatch(agent_name="agent",
                                                    metadata={"duration": 0.1})).outcome)
                await asyncio.sleep(0.2)
            out = await attack
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"\nworker loop lag idle: {idle.stats.describe()}\n"
              f"worker loop lag under slowloris x200: {attacked.stats.describe()}\n"
              f"scrapes under attack: {figures}\ndispatches during attack: {Counter(outcomes)}")
        assert set(outcomes) == {"assigned"} and len(outcomes) >= 10
        assert not figures["scrape_failures"] and figures["scrape_p99"] < 0.5
        assert attacked.stats.p99 < max(0.05, 3 * idle.stats.p99)
        await eventually(lambda: _finished(w, len(outcomes)), timeout=30)
        await assert_wire_truth(sim, w)
