"""The simulator writes livekit-server's dispatch lines, and mtail's counts of them equal the
simulator's ground truth, with real livekit-agents workers taking, refusing and missing jobs."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path

import pytest
from livekit.protocol import agent as proto
from livekit.protocol import models
from mtail_support import c, one_shot

from livekit_agents_exporter.simulator import Simulator, SimulatorConfig
from livekit_agents_exporter.simulator.server_log import ServerLog
from worker_harness import API_KEY, API_SECRET, Knobs, run_worker

GOLDEN = Path(__file__).parent / "golden"
_TIME = re.compile(r'^\d{4}-\d\d-\d\dT[\d:.]+Z\t|"ts":[\d.]+,')


def _job(job_id: str, agent: str, room: str) -> proto.Job:
    return proto.Job(id=job_id, type=proto.JobType.JT_ROOM, agent_name=agent,
                     room=models.Room(name=room, sid="RM_" + job_id[3:]))


@pytest.mark.parametrize("encoding", ["json", "console"])
def test_writer_lines_equal_the_golden_lines(encoding: str) -> None:
    """Everything but the time column, byte for byte, for each kind of line."""
    out = io.StringIO()
    log = ServerLog(out, encoding, api_key="APIkey1")
    log.assigned(_job("AJ_assigned3", "support", 'evil "agentName":"x" room'), "AW_aaaa")
    log.send_failed(_job("AJ_any", "support", "r"), "no servers available (received 1 responses)")
    log.assign_failed(_job("AJ_refused0", "support", "call-9"), "AW_aaaa", "worker not available",
                      retry=True)
    log.no_worker(_job("AJ_refused0", "support", "call-9"), "no workers with sufficient capacity")
    log.assign_failed(_job("AJ_slow0", "sales", "call-3"), "AW_cccc",
                      "context deadline exceeded", retry=False)
    log.not_dispatching(_job("AJ_x", "sales", "call-4"))
    golden = {_TIME.sub("", line) for line in
              (GOLDEN / f"livekit-{encoding}.log").read_text().splitlines()}
    written = [_TIME.sub("", line) for line in out.getvalue().splitlines()]
    assert len(written) == 6 == log.lines
    # LaunchJob's not-dispatching line carries roomID from the room: the golden's is RM_call4
    written[5] = written[5].replace("RM_x", "RM_call4")
    missing = [line for line in written if line not in golden]
    assert not missing, f"lines the golden log does not have: {missing}"


def test_unknown_encoding_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="must be one of json, console, got 'xml'"):
        ServerLog(io.StringIO(), "xml")


@pytest.mark.parametrize("encoding", ["json", "console"])
async def test_mtail_counts_of_the_simulator_log_equal_the_ground_truth(
        tmp_path: Path, mtail: str, encoding: str) -> None:
    log = tmp_path / "livekit.log"
    sim = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET, seed=3,
                                    availability_timeout=1.0, server_log=str(log),
                                    server_log_encoding=encoding))
    await sim.start()
    knobs = Knobs(0.0)

    async def on_request(req) -> None:
        action = json.loads(req.job.metadata or "{}").get("action")
        if action == "silent":  # answered available=false by the SDK: the server tries on
            return
        if action == "slow":  # no answer before the RPC deadline
            await asyncio.sleep(2.0)
        await req.accept()

    try:
        outcomes = []
        outcomes.append((await sim.dispatch("support", {"duration": 0.1})).outcome)  # no worker
        async with run_worker(sim, agent_name="support", load_fnc=knobs, threshold=0.95,
                              on_request=on_request):
            for action in ("accept", "silent", "slow", "accept"):
                result = await sim.dispatch("support", {"action": action, "duration": 0.1})
                outcomes.append(result.outcome)
            knobs.load = 0.8  # above the server's target_load 0.7, below the threshold
            await _until(lambda: any(w.load > 0.79 for w in sim.workers("support")))  # float32
            outcomes.append((await sim.dispatch("support", {"duration": 0.1})).outcome)
        truth = sim.truth.outcomes_for_agent("support")
    finally:
        await sim.stop()
    got = one_shot(mtail, log)
    lost = sum(v for (name, _), v in got.items()
               if name == "livekit_agents_server_dispatches_lost_total")
    truth_lost = truth.get("no_worker_available", 0) + truth.get("availability_timeout", 0)
    assert truth.get("availability_timeout") == 1 and truth.get("assigned", 0) >= 2, outcomes
    assert lost == truth_lost, f"log {got} vs truth {truth}"
    assert got[c("dispatches_assigned_total", agent_name="support")] == truth["assigned"]
    assert got[c("dispatches_lost_total", agent_name="support", cause="no_worker_registered")] == 1
    assert got[c("dispatches_lost_total", agent_name="support", cause="no_capacity")] == 1
    assert got[c("dispatches_lost_total", agent_name="support", cause="deadline_exceeded")] == 1
    assert got.get(c("log_unparsed_lines_total")) == 0


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the worker's load report")
        await asyncio.sleep(0.05)


async def test_automatic_dispatch_without_workers_leaves_no_line(tmp_path: Path) -> None:
    """As livekit-server's getDispatcher: an empty agent name dispatches to the namespaces
    that have workers, so with none there is no job request and no line at all."""
    log = tmp_path / "livekit.log"
    sim = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET, server_log=str(log)))
    await sim.start()
    try:
        assert (await sim.dispatch("", {"duration": 1})).outcome == "no_worker_available"
        assert (await sim.dispatch("named", {"duration": 1})).outcome == "no_worker_available"
    finally:
        await sim.stop()
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and '"agentName":"named"' in lines[0], lines


def test_unwritable_server_log_is_one_clear_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    target = tmp_path / "missing" / "livekit.log"
    proc = subprocess.run([sys.executable, "-m", "livekit_agents_exporter.simulator", "--port",
                           "0", "--server-log", str(target)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot write the server log {target}" in proc.stderr and "Traceback" not in \
        proc.stderr, proc.stderr
