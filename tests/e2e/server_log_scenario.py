"""A lost dispatch paged from livekit-server's log, on real parts.

The simulator writes livekit-server's dispatch lines (JSON encoding) to a file as it places
jobs for two real instrumented livekit-agents workers (processes); the documented pipeline
reads it: ``livekit-agents-exporter server-log`` follows the file into a FIFO, the real mtail
runs the shipped program on it (``ServerLogPipeline``), a real Prometheus scrapes mtail and
the workers and evaluates the shipped rules, a real Alertmanager posts to a webhook served
here.

Phases: a few jobs are assigned; long jobs fill every slot; then one dispatch every
``lost_every`` seconds finds no worker, until ``LiveKitAgentsDispatchesLost`` reaches the
webhook; then the log-derived counts are read from mtail and from Prometheus and put next
to the simulator's ground truth. Used by ``test_server_log_pager.py``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pager_scenario import Notification, Webhook, until

from livekit_agents_exporter.demo.fleet import Fleet
from livekit_agents_exporter.prometheus_runner import (
    Alertmanager,
    Prometheus,
    ScrapeTarget,
    free_port,
)
from livekit_agents_exporter.rules import load_config, render_rules, to_yaml
from livekit_agents_exporter.server_log.pipeline import ServerLogPipeline
from livekit_agents_exporter.simulator import Simulator, SimulatorConfig

LOST_ALERT = "LiveKitAgentsDispatchesLost"
FAST_BURN = "LiveKitAgentsDispatchSloFastBurn"
AGENT = "pager"
API_KEY, API_SECRET = "e2e", "e2e-" + "s" * 40


@dataclass(frozen=True)
class ServerLogConfig:
    prometheus: str = "prometheus"
    alertmanager: str = "prometheus-alertmanager"
    mtail: str = "mtail"
    workers: int = 2
    capacity: int = 4  # slots: a worker is full at 3 jobs (0.75 >= 0.7)
    slots_per_worker: int = 3
    warmup_jobs: int = 4
    lost_every: float = 1.0
    max_losses: int = 40
    encoding: str = "json"
    seed: int = 5


@dataclass
class ServerLogTimeline:
    first_loss: float | None = None  # the simulator returned the first lost dispatch
    page: Notification | None = None
    fast_burn_page: Notification | None = None
    notifications: list[Notification] = field(default_factory=list)
    truth: dict[str, int] = field(default_factory=dict)
    mtail_counts: dict[str, float] = field(default_factory=dict)
    prometheus_counts: dict[str, float] = field(default_factory=dict)
    heartbeats: float = 0.0
    log_lines: int = 0

    @property
    def page_latency(self) -> float:
        assert self.page is not None and self.first_loss is not None
        return self.page.received - self.first_loss


FOR_SCALE = 1 / 60  # as the worker-side pager test: a production minute becomes a second


def _rules() -> str:
    """The shipped pack with every ``for:`` scaled by ``FOR_SCALE`` (DispatchesLost's is 0s
    anyway; the fast burn's 2m becomes 2s); the rate windows are left as shipped."""
    return to_yaml(render_rules(load_config().scaled(FOR_SCALE)))


def _outcome_counts(text: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("livekit_agents_server_"):
                key = s.name + ("{" + s.labels["cause"] + "}" if "cause" in s.labels else "")
                counts[key] = counts.get(key, 0.0) + s.value
    return counts


async def run(cfg: ServerLogConfig, workdir: Path) -> ServerLogTimeline:
    tl = ServerLogTimeline()
    log = workdir / "livekit-server.log"
    sim = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET, seed=cfg.seed,
                                    server_log=str(log), server_log_encoding=cfg.encoding))
    await sim.start()
    fleet = Fleet(url=sim.url, api_key=API_KEY, api_secret=API_SECRET, agent_name=AGENT,
                  capacity=cfg.capacity, threshold=0.7, log_dir=workdir)
    webhook = Webhook(tl.notifications)
    parts: list[Any] = []
    try:
        fleet.start([free_port() for _ in range(cfg.workers)])
        await until(lambda: len([w for w in sim.workers(AGENT)]) >= cfg.workers
                    and all(t.status_updates for t in sim.truth.for_agent(AGENT)), 60,
                    "the workers to register")
        pipeline = ServerLogPipeline(log, workdir / "server-log", mtail_binary=cfg.mtail)
        await asyncio.to_thread(pipeline.start)
        parts.append(pipeline)
        await webhook.start()
        am = Alertmanager(webhook.url, binary=cfg.alertmanager, group_wait="1s",
                          group_interval="1s", workdir=workdir / "alertmanager")
        await asyncio.to_thread(am.start)
        parts.append(am)
        rules = workdir / "rules.yaml"
        rules.write_text(_rules())
        prom = Prometheus(
            [ScrapeTarget("livekit-agents", [f"127.0.0.1:{w.metrics_port}" for w in fleet.workers]),
             ScrapeTarget("livekit-server-log", [pipeline.target])],
            [rules], binary=cfg.prometheus, alertmanager_url=am.url,
            workdir=workdir / "prometheus")
        await asyncio.to_thread(prom.start)
        parts.append(prom)

        async def heartbeat_in_prometheus() -> bool:
            got = await asyncio.to_thread(prom.query, "livekit_agents_server_log_heartbeats_total")
            return bool(got) and float(got[0]["value"][1]) > 0
        await until(heartbeat_in_prometheus, 60, "a heartbeat to pass filter, mtail, Prometheus")

        for _ in range(cfg.warmup_jobs):
            result = await sim.dispatch(AGENT, {"duration": 0.5})
            assert result.outcome == "assigned", result
        await until(lambda: sim.truth.total("jobs_running", AGENT) == 0, 30, "warm-up jobs to end")
        for _ in range(cfg.workers * cfg.slots_per_worker):
            result = await sim.dispatch(AGENT, {"duration": 600})
            assert result.outcome == "assigned", result
        await until(lambda: all(w.status == "WS_FULL" or w.load >= 0.7
                                for w in sim.workers(AGENT)), 30, "the fleet to report full")

        # one dispatch a second finds no worker, until the page arrives
        for _ in range(cfg.max_losses):
            result = await sim.dispatch(AGENT, {"duration": 1})
            if result.outcome in ("no_worker_available", "availability_timeout") and \
                    tl.first_loss is None:
                tl.first_loss = time.time()  # its line was written before dispatch returned
            page = next((n for n in tl.notifications
                         if n.alertname == LOST_ALERT and n.status == "firing"), None)
            if page is not None:
                tl.page = page
                break
            await asyncio.sleep(cfg.lost_every)
        # the same alert pack's SLO page, from the same losses (the ratios need a few scrapes)
        await until(lambda: any(n.alertname == FAST_BURN and n.status == "firing"
                                for n in tl.notifications), 90, "the fast-burn page")
        tl.fast_burn_page = next(n for n in tl.notifications
                                 if n.alertname == FAST_BURN and n.status == "firing")
        # every line written is counted before the totals are compared
        tl.log_lines = sim.server_log.lines if sim.server_log else 0

        async def mtail_caught_up() -> bool:
            text = await asyncio.to_thread(_get, pipeline.metrics_url)
            counts = _outcome_counts(text)
            tl.mtail_counts = counts
            return counts.get("livekit_agents_server_dispatches_total", 0) == sum(
                sim.truth.outcomes_for_agent(AGENT).values())
        await until(mtail_caught_up, 30, "mtail to count every dispatch")
        tl.truth = sim.truth.outcomes_for_agent(AGENT)

        async def prometheus_caught_up() -> bool:
            got = await asyncio.to_thread(
                prom.query, 'sum(livekit_agents_server_dispatches_total{job="livekit-server-log"})')
            return bool(got) and float(got[0]["value"][1]) == \
                tl.mtail_counts["livekit_agents_server_dispatches_total"]
        await until(prometheus_caught_up, 30, "Prometheus to scrape the final totals")
        for name, query in (("lost", "sum(livekit_agents_server_dispatches_lost_total)"),
                            ("assigned", "sum(livekit_agents_server_dispatches_assigned_total)"),
                            ("dispatches", "sum(livekit_agents_server_dispatches_total)")):
            got = await asyncio.to_thread(prom.query, query)
            tl.prometheus_counts[name] = float(got[0]["value"][1]) if got else 0.0
        tl.heartbeats = tl.mtail_counts.get("livekit_agents_server_log_heartbeats_total", 0.0)
        return tl
    finally:
        for part in reversed(parts):
            await asyncio.to_thread(part.stop)
        await webhook.stop()
        fleet.stop()
        await sim.stop()


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
        return resp.read().decode()


def describe(tl: ServerLogTimeline) -> str:
    lines = ["server-log pager path:"]
    if tl.page is not None and tl.first_loss is not None:
        lines.append(f"  first lost dispatch -> {LOST_ALERT} at the webhook: "
                     f"{tl.page_latency:.2f} s")
    if tl.fast_burn_page is not None and tl.first_loss is not None:
        lines.append(f"  first lost dispatch -> {FAST_BURN} at the webhook: "
                     f"{tl.fast_burn_page.received - tl.first_loss:.2f} s")
    lines.append(f"  ground truth: {tl.truth}")
    lines.append(f"  mtail: {tl.mtail_counts}")
    lines.append(f"  Prometheus: {tl.prometheus_counts}")
    lines.append(f"  log lines written: {tl.log_lines}, heartbeats counted: {tl.heartbeats:g}")
    return "\n".join(lines)
