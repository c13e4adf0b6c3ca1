"""The demo's worker processes get their credentials the way SDK workers do, not on argv."""

from __future__ import annotations

import asyncio

import psutil

from livekit_agents_exporter.demo.fleet import Fleet
from livekit_agents_exporter.prometheus_runner import free_port
from livekit_agents_exporter.simulator import Simulator, SimulatorConfig

# token_urlsafe() can start with "-": once read as an option, the worker refused to start
SECRET = "-dash-first-secret-0123456789abcdefghij"


async def test_worker_with_a_dash_first_secret_registers_and_hides_it(tmp_path):
    sim = Simulator(SimulatorConfig(api_key="demo", api_secret=SECRET, host="127.0.0.1", port=0))
    await sim.start()
    fleet = Fleet(url=sim.url, api_key="demo", api_secret=SECRET, agent_name="demo",
                  capacity=2, threshold=0.7, log_dir=tmp_path)
    try:
        fleet.start([free_port()])
        await sim.wait_for_workers(1, agent_name="demo", timeout=60)
        (worker,) = fleet.workers
        argv = " ".join(psutil.Process(worker.process.pid).cmdline())
        assert SECRET not in argv and "--api-secret" not in argv
    finally:
        await asyncio.to_thread(fleet.stop)
        await sim.stop()
    assert [w.process.returncode for w in fleet.workers] == [0]  # stopped cleanly by SIGTERM
