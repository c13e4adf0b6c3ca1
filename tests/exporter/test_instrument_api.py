"""The instrument() contract: one call, clear errors, idempotent, registry mode."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import aiohttp
import pytest
from livekit.agents import worker as sdk_worker
from prometheus_client import CollectorRegistry, generate_latest

from livekit_agents_exporter import ExporterStartError, InstrumentationError, instrument, sdk
from livekit_agents_exporter.synthetic import synthetic_entrypoint
from worker_harness import API_KEY, API_SECRET, eventually, run_worker, scrape


def _options(**kw):
    return sdk_worker.WorkerOptions(entrypoint_fnc=synthetic_entrypoint, ws_url="ws://127.0.0.1:1",
                                    api_key="k", api_secret="s", **kw)


def test_port_in_use_fails_before_the_worker_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ExporterStartError, match=f"port {port} is already in use"):
            instrument(_options(), host="127.0.0.1", port=port)


def test_unresolvable_host_is_named():
    with pytest.raises(ExporterStartError, match="no-such-host.invalid"):
        instrument(_options(), host="no-such-host.invalid", port=0)


def test_out_of_range_port_is_refused():
    with pytest.raises(InstrumentationError, match="65535"):
        instrument(_options(), port=70000)


def test_second_call_is_idempotent_and_conflicting_call_is_an_error():
    opts = _options()
    first = instrument(opts, host="127.0.0.1", port=0)
    try:
        assert instrument(opts) is first
        assert instrument(opts, host="127.0.0.1", port=0) is first
        with pytest.raises(InstrumentationError, match="already instrumented"):
            instrument(opts, registry=CollectorRegistry())
    finally:
        first.close()


def test_other_objects_are_refused():
    with pytest.raises(InstrumentationError, match="AgentServer, a Worker or WorkerOptions"):
        instrument(object(), port=None)


async def test_instrumenting_a_running_worker_is_an_error(sim):
    opts = sdk_worker.WorkerOptions(entrypoint_fnc=synthetic_entrypoint, ws_url=sim.url,
                                    api_key=API_KEY, api_secret=API_SECRET, port=0,
                                    agent_name="bare", num_idle_processes=0,
                                    job_executor_type=sdk_worker.JobExecutorType.THREAD)
    worker = sdk.build_worker(opts)
    task = asyncio.create_task(sdk.run_worker(worker))
    try:
        await sim.wait_for_workers(1, agent_name="bare", timeout=15)
        with pytest.raises(InstrumentationError, match="already running"):
            instrument(worker, port=None)
    finally:
        await worker.aclose()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_registry_mode_serves_nothing_and_fills_the_registry(sim):
    registry = CollectorRegistry()
    opts = sdk_worker.WorkerOptions(entrypoint_fnc=synthetic_entrypoint, ws_url=sim.url,
                                    api_key=API_KEY, api_secret=API_SECRET, port=0,
                                    agent_name="reg", num_idle_processes=0,
                                    job_executor_type=sdk_worker.JobExecutorType.THREAD)
    exporter = instrument(opts, registry=registry)
    assert exporter.url is None
    worker = sdk.build_worker(opts)
    task = asyncio.create_task(sdk.run_worker(worker))
    try:
        await sim.wait_for_workers(1, agent_name="reg", timeout=15)
        await eventually(lambda: b'livekit_agents_worker_registered{agent_name="reg"} 1.0'
                         in generate_latest(registry), what="registered gauge in the registry")
    finally:
        await worker.aclose()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_reconnect_keeps_counting_without_double_counting(sim):
    async with run_worker(sim) as w:
        await sim.dispatch(agent_name="agent", metadata={"duration": 0.1})
        first_id = w.worker_id
        await sim.disconnect_worker(first_id)
        await eventually(lambda: sim.truth.registrations_for_agent("agent") >= 2,
                         what="re-registration")
        await sim.wait_for_workers(1, agent_name="agent", timeout=15)
        await sim.dispatch(agent_name="agent", metadata={"duration": 0.1})
        s = await w.scrape()
        assert s.value("livekit_agents_worker_registrations_total") == 2
        assert s.value("livekit_agents_worker_registered") == 1
        assert s.value("livekit_agents_job_requests_total") == 2
        assert s.value("livekit_agents_job_requests_accepted_total") == 2


async def test_endpoint_serves_landing_page_health_and_metrics(sim):
    async with run_worker(sim) as w:
        base = w.exporter.url.rsplit("/", 1)[0]
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/") as resp:
                assert resp.status == 200 and 'href="metrics"' in await resp.text()
            async with session.get(base + "/healthz") as resp:
                assert resp.status == 200
            async with session.get(base + "/metrics",
                                   headers={"Accept": "application/openmetrics-text"}) as resp:
                assert "openmetrics" in resp.headers["Content-Type"]
                assert (await resp.text()).rstrip().endswith("# EOF")
        s = await scrape(w.exporter)
        assert s.has("process_resident_memory_bytes")


RUN_APP_WORKER = textwrap.dedent("""
    from livekit.agents import cli, WorkerOptions, JobExecutorType
    from livekit_agents_exporter import instrument
    from livekit_agents_exporter.synthetic import synthetic_entrypoint

    if __name__ == "__main__":
        opts = WorkerOptions(entrypoint_fnc=synthetic_entrypoint, agent_name="run-app",
                             job_executor_type=JobExecutorType.THREAD, num_idle_processes=0,
                             port=0)
        instrument(opts, host="127.0.0.1", port=int(__import__("os").environ["METRICS_PORT"]))
        cli.run_app(opts)
""")


async def test_cli_run_app_with_instrumented_options(sim, tmp_path: Path):
    """The user never holds the worker: options in, metrics out."""
    script = tmp_path / "agent.py"
    script.write_text(RUN_APP_WORKER)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, LIVEKIT_URL=sim.url, LIVEKIT_API_KEY=API_KEY,
               LIVEKIT_API_SECRET=API_SECRET, METRICS_PORT=str(port),
               PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, str(script), "start"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await sim.wait_for_workers(1, agent_name="run-app", timeout=60)
        result = await sim.dispatch(agent_name="run-app", metadata={"duration": 0.1})
        assert result.outcome == "assigned"

        async def scraped():
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    text = await resp.text()
            return 'livekit_agents_jobs_launched_total{agent_name="run-app"} 1.0' in text

        await eventually(scraped, timeout=20, what="run_app worker metrics")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
