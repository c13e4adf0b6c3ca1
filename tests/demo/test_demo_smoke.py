"""The demo, end to end in a short run: the first thing a newcomer sees must work."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from livekit_agents_exporter.prometheus_runner import find_binary, free_port_block


def _demo(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livekit_agents_exporter", "demo", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"))


@pytest.mark.slow
def test_short_demo_saturates_and_serves_every_worker():
    base = free_port_block(3)
    run = _demo("--workers", "3", "--capacity", "2", "--duration", "25", "--job-duration", "6",
                "--profile", "0:0.5,8:3,25:3", "--seed", "3", "--metrics-port", str(base))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    for i in range(3):
        assert f"worker-{i + 1}: metrics at http://127.0.0.1:{base + i}/metrics" in out
    assert "\x1b[" not in run.stdout  # not a TTY: plain lines only
    summary = re.search(r"demo finished: dispatches (.*)", out)
    assert summary, out
    counts = dict(re.findall(r"(\w+) (\d+)", summary.group(1)))
    assert int(counts.get("assigned", 0)) > 0, out
    assert int(counts.get("no_worker_available", 0)) > 0, "saturation lost no dispatch"
    workers = re.findall(r"worker-\d: (\d+) offers, (\d+) refused, \d+ assignment timeouts "
                         r"\(metrics served\)", out)
    assert len(workers) == 3, out
    assert sum(int(offers) for offers, _ in workers) > 0
    # the closing summary holds the exporters' totals against the simulator's ground truth
    truth = re.search(r"exporters vs simulator ground truth: offers (\d+) (=|!=) (\d+), "
                      r"refused (\d+) (=|!=) (\d+)", out)
    assert truth and truth.group(2) == "=" and truth.group(5) == "=", out
    if find_binary("prometheus"):
        # and, with Prometheus, how many calls were lost before the first page (or that
        # none came)
        assert re.search(r"first page t=\d+s: \d+ calls lost before it|pages: NONE YET", out), out


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be between 1 and 32"),
    (["--threshold", "1.5"], "--threshold must be in (0, 1]"),
    (["--profile", "0:1,abc"], "--profile"),
    (["--profile", "5:1"], "first point must be at time 0"),
    (["--job-duration", "-1"], "--job-duration must be positive"),
])
def test_bad_options_get_one_clear_line_and_exit_2(args, message):
    run = _demo(*args, timeout=60)
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_port_in_use_is_reported_before_anything_starts():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        run = _demo("--metrics-port", str(port), "--workers", "1", timeout=60)
    assert run.returncode == 2
    assert f"port {port} is already in use" in run.stderr
