"""Collects what the live view shows: worker scrapes, simulator truth, Prometheus alerts.

Everything is read the way an operator would read it: the workers' ``/metrics``
endpoints over HTTP and the Prometheus alerts API, never the processes' insides.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from .. import metrics
from .view import Pager, Screen, Snapshot, WorkerRow

TICK_S = 1.0


def parse_worker(text: str) -> dict[str, float]:
    """Sum every sample by name (one agent per worker), e.g. rejections over reasons."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def worker_row(name: str, values: dict[str, float] | None) -> WorkerRow:
    if values is None:
        return WorkerRow(name=name, up=False)
    get = values.get
    return WorkerRow(
        name=name, up=True,
        load=get(metrics.series("worker_load_ratio"), math.nan),
        threshold=get(metrics.series("worker_load_threshold_ratio"), math.nan),
        active_jobs=int(get(metrics.series("worker_active_jobs"), 0)),
        full=get(metrics.series("worker_full"), 0) == 1,
        registered=get(metrics.series("worker_registered"), 0) == 1,
        offers=int(get(metrics.series("job_requests"), 0)),
        refused=int(get(metrics.series("job_requests_rejected"), 0)),
        timeouts=int(get(metrics.series("assignment_timeouts"), 0)),
    )


class LiveView:
    def __init__(self, screen: Screen, fleet: Any, sim: Any, prometheus: Any,
                 target_load: float, duration: float, traffic: Any,
                 server_log_url: str | None = None) -> None:
        self.screen, self.fleet, self.sim, self.prometheus = screen, fleet, sim, prometheus
        self.target_load, self.duration, self.traffic = target_load, duration, traffic
        self.started = time.monotonic()
        self.seen_alerts: dict[str, str] = {}
        self.critical: set[str] = set()  # critical alerts firing at the last poll
        self.pager = Pager()
        self.last: Snapshot | None = None
        self.server_log_url = server_log_url  # mtail's /metrics: lost calls from the log

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                self.last = await self.snapshot(session)
                self.screen.show(self.last)
                await asyncio.sleep(TICK_S)

    async def _scrape(self, session: aiohttp.ClientSession, url: str) -> dict[str, float] | None:
        try:
            async with session.get(url) as resp:
                return parse_worker(await resp.text()) if resp.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None

    async def snapshot(self, session: aiohttp.ClientSession) -> Snapshot:
        scrapes = await asyncio.gather(*(self._scrape(session, w.metrics_url)
                                         for w in self.fleet.workers))
        rows = [worker_row(w.name, s) for w, s in zip(self.fleet.workers, scrapes, strict=True)]
        outcomes = self.sim.truth.outcomes_for_agent("demo")
        elapsed = time.monotonic() - self.started
        snap = Snapshot(
            elapsed_s=elapsed, duration_s=self.duration,
            arrival_rate=self.traffic.profile.rate_at(min(elapsed, self.duration)),
            target_load=self.target_load, workers=rows,
            dispatched=sum(outcomes.values()), assigned=outcomes.get("assigned", 0),
            lost=outcomes.get("no_worker_available", 0),
            other_failures=sum(v for k, v in outcomes.items()
                               if k not in ("assigned", "no_worker_available")),
        )
        if self.server_log_url:
            log = await self._scrape(session, self.server_log_url)
            snap.server_log_lost = int(log.get(metrics.series("server_dispatches_lost"), 0)) \
                if log is not None else None
        if self.prometheus is not None:
            snap.prometheus = self.prometheus.url
            snap.alerts = await asyncio.to_thread(self._alerts)
            paged = self.pager.update(elapsed, snap.lost, sorted(self.critical))
            if paged:
                self.screen.event(paged)
            snap.pager = self.pager
        return snap

    def _alerts(self) -> list[tuple[str, str]]:
        try:
            alerts = self.prometheus.alerts()
        except Exception:  # Prometheus restarting or gone: the view carries on
            return []
        current: dict[str, Any] = {}
        self.critical = set()
        for alert in alerts:
            name = alert["labels"].get("alertname", "?")
            if current.get(name) != "firing":
                current[name] = alert.get("state", "?")
            if alert.get("state") == "firing" and alert["labels"].get("severity") == "critical":
                self.critical.add(name)
        for name, state in current.items():
            if self.seen_alerts.get(name) != state:
                self.screen.event(f"alert {name} {state}")
        for name in sorted(set(self.seen_alerts) - set(current)):
            self.screen.event(f"alert {name} resolved")
        self.seen_alerts = current
        return sorted(current.items())
