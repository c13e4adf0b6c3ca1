"""The documented log pipeline on one machine: the log filter into a FIFO, mtail reading it.

``livekit-agents-exporter server-log LOG -o FIFO`` and ``mtail --progs livekit-server.mtail
--logs FIFO``, as server-log/README.md describes them; the demo and the end-to-end test run
exactly this.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..prometheus_runner import Mtail
from . import PROGRAM_PATH


class ServerLogPipeline:
    def __init__(self, log: Path, workdir: Path, *, mtail_binary: str = "mtail",
                 heartbeat: float = 1.0, poll: float = 0.05) -> None:
        self.log, self.workdir = log, workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.fifo = workdir / "server-log.fifo"
        self.mtail = Mtail(PROGRAM_PATH, [str(self.fifo)], binary=mtail_binary,
                           workdir=workdir / "mtail")
        self._filter_argv = [sys.executable, "-m", "livekit_agents_exporter", "server-log",
                             str(log), "-o", str(self.fifo), "--heartbeat", f"{heartbeat:g}",
                             "--poll", f"{poll:g}"]
        self._filter: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        return self.mtail.url + "/metrics"

    @property
    def target(self) -> str:
        return self.mtail.target

    def start(self) -> ServerLogPipeline:
        if not self.fifo.exists():
            os.mkfifo(self.fifo, 0o600)
        self.mtail.start()
        with (self.workdir / "filter.log").open("wb") as errors:
            self._filter = subprocess.Popen(self._filter_argv, stdout=subprocess.DEVNULL,
                                            stderr=errors, start_new_session=True)
        return self

    def stop(self) -> None:
        if self._filter is not None and self._filter.poll() is None:
            self._filter.terminate()
            try:
                self._filter.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._filter.kill()
                self._filter.wait(timeout=5)
        self.mtail.stop()
