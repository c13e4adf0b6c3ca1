"""fork() after instrument(): the process that runs the worker serves it, and when the
processes are gone the port refuses instead of hanging (no forked child holds it)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import psutil

import worker_harness as harness

SCRIPT = Path(__file__).with_name("fork_worker.py")


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 3)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_the_forked_worker_is_served_and_nothing_hangs_after(sim):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), sim.url, harness.API_KEY, harness.API_SECRET,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    child = None
    try:
        port = int((await asyncio.wait_for(proc.stdout.readline(), 30)).split()[1])
        child = int((await asyncio.wait_for(proc.stdout.readline(), 30)).split()[1])
        assert (await _get(port)).startswith(b"HTTP/1.1 200")  # the parent's endpoint
        await sim.wait_for_workers(1, agent_name="agent", timeout=30)
        proc.stdin.write(b"exit\n")  # the parent goes, as a daemonizing launcher does
        await proc.wait()

        async def child_serves() -> bool:
            try:
                return b'livekit_agents_worker_registered{agent_name="agent"} 1.0' in \
                    await _get(port)
            except (OSError, asyncio.TimeoutError):
                return False

        await harness.eventually(child_serves, timeout=30, what="the child to serve its worker")
        result = await sim.dispatch(agent_name="agent", metadata={"duration": 0.1})
        assert result.outcome == "assigned", result.outcome

        async def counted() -> bool:
            return b'livekit_agents_job_requests_total{agent_name="agent"} 1.0' in await _get(port)

        await harness.eventually(counted, what="the child's offer counted")
        endpoints = [p for p in psutil.Process(child).children()
                     if "endpoint_process" in " ".join(p.cmdline())]
        assert len(endpoints) == 1, endpoints
        os.kill(child, signal.SIGKILL)
        child = None

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return False
            except ConnectionRefusedError:
                return True

        await harness.eventually(refused, timeout=10, what="the port to refuse")
        psutil.wait_procs(endpoints, timeout=5)
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE
                       for p in endpoints)
    finally:
        if child is not None:
            os.kill(child, signal.SIGKILL)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
