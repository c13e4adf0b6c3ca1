"""Running the shipped mtail program: one-shot over a file, or as a daemon, and reading it."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from livekit_agents_exporter.server_log import PROGRAM_PATH

Counts = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Counts:
    """Every sample of the program's own metrics, keyed by (name, sorted labels)."""
    counts: Counts = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("livekit_agents_server_"):
                counts[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return counts


def one_shot(mtail: str, log: Path, program: Path = PROGRAM_PATH) -> Counts:
    """mtail's own reading of a whole file (``--one_shot``), as Prometheus text."""
    proc = subprocess.run([mtail, "--one_shot", "--one_shot_format", "prometheus",
                           "--emit_prog_label=false", "--progs", str(program), "--logs", str(log)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"mtail failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return parse(proc.stdout)


def scrape(url: str) -> Counts:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
        return parse(resp.read().decode())


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def c(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("livekit_agents_server_" + name, tuple(sorted(labels.items())))
