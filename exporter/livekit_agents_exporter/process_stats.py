"""Job process count and memory, read with psutil at scrape time.

The SDK only logs when a job process grows past ``job_memory_warn_mb`` or is killed
at ``job_memory_limit_mb``; exporting resident memory lets operators see the climb.
One reading serves the three gauges of a scrape (cached for a second), so a scrape
costs one pass over the processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psutil


class ProcessStats:
    def __init__(self, pids: Callable[[], list[int]], max_age_s: float = 1.0) -> None:
        self._pids = pids
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._at = -1e9
        self._reading = (0, 0, 0)

    def _read(self) -> tuple[int, int, int]:
        with self._lock:
            now = time.monotonic()
            if now - self._at > self._max_age_s:
                self._reading = _measure(self._pids())
                self._at = now
            return self._reading

    def count(self) -> float:
        return self._read()[0]

    def total_rss(self) -> float:
        return self._read()[1]

    def max_rss(self) -> float:
        return self._read()[2]


def _measure(pids: list[int]) -> tuple[int, int, int]:
    alive, total, largest = 0, 0, 0
    for pid in pids:
        try:
            rss = psutil.Process(pid).memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        alive += 1
        total += rss
        largest = max(largest, rss)
    return alive, total, largest
