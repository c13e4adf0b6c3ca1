"""Starts and stops the demo's worker processes, leaving no orphans behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class DemoWorker:
    name: str
    metrics_port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"


class Fleet:
    def __init__(self, *, url: str, api_key: str, api_secret: str, agent_name: str,
                 capacity: int, threshold: float, log_dir: Path) -> None:
        self._base = [sys.executable, "-m", "livekit_agents_exporter.demo.worker_process",
                      "--url", url, "--agent-name", agent_name, "--capacity", str(capacity),
                      "--threshold", str(threshold)]
        # credentials travel in the environment the SDK reads them from: a secret on a
        # command line is visible to every user of the machine (and one starting with "-"
        # reads as an option)
        self._env = dict(os.environ, PYTHONUNBUFFERED="1", LIVEKIT_API_KEY=api_key,
                         LIVEKIT_API_SECRET=api_secret)
        self._log_dir = log_dir
        self.workers: list[DemoWorker] = []

    def start(self, ports: list[int]) -> None:
        for i, port in enumerate(ports, start=1):
            log_path = self._log_dir / f"worker-{i}.log"
            log = log_path.open("wb")
            # a session of its own: Ctrl-C reaches the demo, which then stops workers in order
            proc = subprocess.Popen([*self._base, "--metrics-port", str(port)], stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env=self._env)
            self.workers.append(DemoWorker(f"worker-{i}", port, proc, log_path))

    def dead(self) -> list[DemoWorker]:
        return [w for w in self.workers if w.process.poll() is not None]

    def stop(self, timeout: float = 15.0) -> None:
        for w in self.workers:
            if w.process.poll() is None:
                w.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for w in self.workers:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                w.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                os.killpg(w.process.pid, signal.SIGKILL)
                w.process.wait(timeout=5)
