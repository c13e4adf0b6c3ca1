"""Runs a user's worker script as users run it: ``python agent.py start``, its own process.

The script gets what a deployment gives it: LIVEKIT_URL / KEY / SECRET pointing at the
simulator, and the exporter's address through LIVEKIT_AGENTS_EXPORTER_HOST/PORT. Job
processes are the SDK's default (process executor, default start method); only the
local inference model preload is switched off through the SDK's own environment
variable, so that job processes warm up in a test's time.

``start`` binds the SDK's health server on its production port, 8081, which has no
environment override: runs of these scripts take a lock and wait for the port to be
free, so two of them (from two test runs) never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from worker_harness import API_KEY, API_SECRET, Samples

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SDK_HEALTH_PORT = 8081
_LOCK = Path(tempfile.gettempdir()) / f"livekit-agents-exporter-tests-port-{SDK_HEALTH_PORT}.lock"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


@dataclass
class Script:
    proc: subprocess.Popen[bytes]
    metrics_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def scrape(self) -> Samples:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(self.metrics_url) as resp:
                assert resp.status == 200, resp.status
                return Samples(await resp.text())

    async def scrape_when_up(self, timeout: float = 60) -> Samples:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await self.scrape()
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                if self.proc.poll() is not None:
                    raise AssertionError(f"script exited ({self.proc.returncode}):\n"
                                         f"{self.log()[-3000:]}") from None
                if time.monotonic() > deadline:
                    raise AssertionError(f"no /metrics at {self.metrics_url} after {timeout}s:\n"
                                         f"{self.log()[-3000:]}") from None
            await asyncio.sleep(0.1)


async def _wait_port_free(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not _port_free(port):
        if time.monotonic() > deadline:
            raise AssertionError(f"port {port} (the SDK's health server in `start`) stayed "
                                 f"in use for {timeout}s")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def run_script(path: Path, sim_url: str, tmp: Path, *args: str,
                     extra_env: dict[str, str] | None = None,
                     drop_env: tuple[str, ...] = (),
                     python: str = sys.executable) -> AsyncIterator[Script]:
    """``python <path> start`` (or ``args``); stopped with SIGTERM as a pod is. ``python``
    is the test's interpreter unless another venv's is given."""
    port = free_port()
    env = dict(os.environ, LIVEKIT_URL=sim_url, LIVEKIT_API_KEY=API_KEY,
               LIVEKIT_API_SECRET=API_SECRET, LIVEKIT_AGENTS_EXPORTER_HOST="127.0.0.1",
               LIVEKIT_AGENTS_EXPORTER_PORT=str(port), LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE="0",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env.update(extra_env or {})
    for name in drop_env:
        env.pop(name, None)
    log_path = tmp / f"{path.stem}.log"
    with open(_LOCK, "w") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.2)
        await _wait_port_free(SDK_HEALTH_PORT)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([python, str(path), *(args or ("start",))], env=env,
                                    cwd=path.parent, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            yield Script(proc, f"http://127.0.0.1:{port}/metrics", log_path)
        finally:
            await stop(proc)


async def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM the worker (it drains and closes its job processes), then its whole group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def prewarm_raises(agent_name: str) -> str:
    """A worker script whose ``prewarm`` raises in every job process (the SDK's default
    process executor); ``IDLE`` in its environment sets ``num_idle_processes`` (default 0)."""
    return f'''
import os
from livekit.agents import JobContext, JobProcess, WorkerOptions, cli
from livekit_agents_exporter import instrument


def prewarm(proc: JobProcess) -> None:
    raise RuntimeError("model file missing (on purpose)")


async def entrypoint(ctx: JobContext) -> None:
    ctx.shutdown(reason="done")


def idle() -> float:
    return 0.0  # not the CPU default: a busy test machine must not make the worker full


opts = WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm, load_fnc=idle,
                     agent_name="{agent_name}",
                     num_idle_processes=int(os.environ.get("IDLE", "0")))
instrument(opts)

if __name__ == "__main__":
    cli.run_app(opts)
'''
