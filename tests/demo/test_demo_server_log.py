"""With mtail installed, the demo also counts lost dispatches from the simulated server's log,
and those counts equal the simulator's."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from binaries import require_binary
from livekit_agents_exporter.prometheus_runner import free_port_block


@pytest.mark.slow
def test_demo_counts_lost_dispatches_from_the_server_log():
    require_binary("mtail", "mtail")
    base = free_port_block(2)
    run = subprocess.run(
        [sys.executable, "-m", "livekit_agents_exporter", "demo", "--workers", "2",
         "--capacity", "2", "--duration", "20", "--job-duration", "6", "--profile",
         "0:0.5,6:3,20:3", "--seed", "4", "--metrics-port", str(base), "--no-prometheus"],
        capture_output=True, text=True, timeout=150, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "counted by mtail at http://127.0.0.1:" in out, out
    counts = dict(re.findall(r"(\w+) (\d+)", re.search(r"demo finished: dispatches (.*)",
                                                       out).group(1)))
    logged = re.search(r"server log \(mtail\): (\d+) lost, (\d+) assigned", out)
    assert logged, out
    lost = int(counts.get("no_worker_available", 0)) + int(counts.get("availability_timeout", 0))
    assert lost > 0, out
    assert (int(logged.group(1)), int(logged.group(2))) == (lost, int(counts["assigned"])), out
    assert re.search(r"log_lost=\d+", out), "the live view shows the log's count"
