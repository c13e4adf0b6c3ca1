"""Shared pieces of the benchmarks: worker processes, a timing simulator, the job mix, stats."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from livekit.protocol import agent as proto

from livekit_agents_exporter.simulator import Simulator, SimulatorConfig
from stats import median as median  # the suites' statistics live in stats.py
from stats import quantile as quantile

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
API_KEY = "bench-key"
API_SECRET = "bench-secret-that-is-long-enough-for-hs256"
AGENT = "bench"


# --- the simulator, timing each offer ------------------------------------------------

class TimedSimulator(Simulator):
    """The dispatch simulator, recording when each offer left and what came back when.

    ``answer``: offer sent -> AvailabilityResponse received; ``running``: offer sent ->
    UpdateJobStatus(JS_RUNNING) received. Both measured on the server side, the only
    place the dispatch latency a caller feels can be seen. Offers carry a ``seq`` in
    their metadata, so that the same offer sent to two workers can be paired.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__(config)
        self.sent: dict[str, tuple[float, str, str]] = {}  # job id -> (at, worker id, seq)
        self.latency: dict[str, dict[tuple[str, str], float]] = {"answer": {}, "running": {}}

    async def _offer(self, worker_id: str, job: proto.Job, *args: Any) -> Any:
        try:
            seq = str(json.loads(job.metadata or "{}").get("seq", job.id))
        except ValueError:
            seq = job.id
        self.sent[job.id] = (time.monotonic(), worker_id, seq)
        return await super()._offer(worker_id, job, *args)

    async def _on_worker_message(self, conn: Any, msg: proto.WorkerMessage) -> None:
        now = time.monotonic()
        which = msg.WhichOneof("message")
        if which == "availability":
            sent = self.sent.get(msg.availability.job_id)
            if sent is not None:
                self.latency["answer"][(sent[1], sent[2])] = now - sent[0]
        elif which == "update_job" and msg.update_job.status == proto.JobStatus.JS_RUNNING:
            sent = self.sent.pop(msg.update_job.job_id, None)
            if sent is not None:
                self.latency["running"][(sent[1], sent[2])] = now - sent[0]
        await super()._on_worker_message(conn, msg)

    def paired(self, kind: str, worker_a: str, worker_b: str,
               seqs: list[str]) -> list[tuple[float, float]]:
        """(latency at a, latency at b) of each offer in ``seqs`` that both answered."""
        lat = self.latency[kind]
        return [(lat[(worker_a, q)], lat[(worker_b, q)]) for q in seqs
                if (worker_a, q) in lat and (worker_b, q) in lat]


@contextlib.asynccontextmanager
async def simulator() -> Any:
    sim = TimedSimulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET,
                                         host="127.0.0.1", port=0, seed=1,
                                         room_url="ws://127.0.0.1:9"))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


# --- worker processes ----------------------------------------------------------------

def child_env() -> dict[str, str]:
    """The exporter package importable in the child even when it is not installed."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    src = str(REPO / "exporter")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


@dataclass(frozen=True)
class CpuSample:
    threads_ns: dict[int, int]
    ticks_s: float

    def until(self, later: CpuSample) -> float:
        """CPU seconds between two samples: nanosecond run times when no thread came or
        went in between (their sum is then exact), the coarser process totals otherwise."""
        if self.threads_ns and self.threads_ns.keys() == later.threads_ns.keys():
            return sum(later.threads_ns[t] - ns for t, ns in self.threads_ns.items()) / 1e9
        return later.ticks_s - self.ticks_s


@dataclass
class WorkerProcess:
    """A benchmark worker (``bench_worker.py``) running against the simulator."""

    proc: subprocess.Popen[bytes]
    worker_id: str
    exporter_url: str | None
    sdk_metrics_url: str | None
    ps: psutil.Process = field(init=False)

    def __post_init__(self) -> None:
        self.ps = psutil.Process(self.proc.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU of the worker and every process below it (10 ms ticks)."""
        total = 0.0
        for p in [self.ps, *self.ps.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def cpu_sample(self) -> CpuSample:
        """CPU so far, both from the kernel's per-thread run time (nanoseconds, but only
        for threads alive now) and from the process totals (ticks, every thread)."""
        tasks: dict[int, int] = {}
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = Path(f"/proc/{self.proc.pid}/task/{tid}/schedstat").read_text()
                    tasks[int(tid)] = int(stat.split()[0])
        return CpuSample(tasks, self.cpu_seconds())

    def rss_bytes(self) -> int:
        return int(self.ps.memory_info().rss)

    def toggle_saturation(self) -> None:
        """The worker's load_fnc returns 1.0 (full) until toggled again."""
        self.proc.send_signal(signal.SIGUSR1)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


async def start_worker(sim: TimedSimulator, *, instrument: bool, sdk_metrics: bool = False,
                       lag_file: Path | None = None, log_dir: Path,
                       capacity: int = 64, executor: str = "thread") -> WorkerProcess:
    before = {w.worker_id for w in sim.workers(AGENT)}
    argv = [sys.executable, str(HERE / "bench_worker.py"), "--url", sim.url,
            "--api-key", API_KEY, "--api-secret", API_SECRET, "--agent-name", AGENT,
            "--capacity", str(capacity), "--executor", executor]
    if instrument:
        argv.append("--instrument")
    if sdk_metrics:
        argv.append("--sdk-metrics")
    if lag_file is not None:
        argv += ["--lag-file", str(lag_file)]
    log_dir.mkdir(parents=True, exist_ok=True)
    log = (log_dir / f"worker-{time.monotonic_ns()}.log").open("wb")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, env=child_env(),
                            start_new_session=True)
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline), 60)
        info = json.loads(line)
        await sim.wait_for_workers(len(before) + 1, agent_name=AGENT, timeout=30)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    new = [w.worker_id for w in sim.workers(AGENT) if w.worker_id not in before]
    return WorkerProcess(proc, new[0], info["exporter_url"], info["sdk_metrics_url"])


async def stop_worker(sim: TimedSimulator, worker: WorkerProcess) -> None:
    await asyncio.get_running_loop().run_in_executor(None, worker.stop)
    deadline = time.monotonic() + 10
    while any(w.worker_id == worker.worker_id for w in sim.workers(AGENT)):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)


# --- the job mix ----------------------------------------------------------------------

@dataclass(frozen=True)
class JobMix:
    """Offers at ``rate`` per second (Poisson, fixed seed), each sent to the one worker.

    ``reject_share`` of them carry ``{"reject": true}``, which the worker's on_request
    rejects; the rest are accepted, assigned, run ``job_s`` seconds and end.
    """

    rate: float = 100.0
    job_s: float = 0.2
    reject_share: float = 0.1

    def schedule(self, duration: float, seed: int) -> list[tuple[float, dict[str, Any]]]:
        rng = random.Random(seed)
        out, t = [], 0.0
        while True:
            t += rng.expovariate(self.rate)
            if t >= duration:
                return out
            meta: dict[str, Any] = {"duration": self.job_s, "seq": f"{seed}:{len(out)}"}
            if rng.random() < self.reject_share:
                meta["reject"] = True
            out.append((t, meta))


async def drive(sim: TimedSimulator, worker_ids: list[str] | str, mix: JobMix,
                duration: float, seed: int) -> list[str]:
    """Send the offers of ``mix`` for ``duration`` seconds, each to every worker in
    ``worker_ids`` at the same moment (the order rotating); returns the offers' seqs."""
    ids = [worker_ids] if isinstance(worker_ids, str) else list(worker_ids)
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks: set[asyncio.Task[Any]] = set()
    seqs = []
    for n, (at, meta) in enumerate(mix.schedule(duration, seed)):
        delay = start + at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        for wid in ids[n % len(ids):] + ids[:n % len(ids)]:
            task = asyncio.ensure_future(sim.offer(wid, AGENT, meta))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        seqs.append(meta["seq"])
    if tasks:
        await asyncio.wait(tasks, timeout=10)
    return seqs


def machine_description() -> dict[str, str]:
    import platform

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": str(psutil.cpu_count(logical=True)),
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
