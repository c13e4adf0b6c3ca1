"""The pager path on real parts: one scenario run and the timeline it leaves.

A simulated LiveKit server, a fleet of real instrumented livekit-agents workers (each its
own process with its own ``/metrics``), a real Prometheus evaluating the bundled rules and
a real Alertmanager posting to a webhook served here. The fleet goes through:

1. healthy: bursty traffic under capacity (``TrafficGenerator``); nothing may fire;
2. ramp: one long job every ``ramp_step`` seconds fills the fleet slot by slot, so the
   headroom falls linearly; the early warning should reach the webhook before the
   first lost dispatch;
3. saturation: the next dispatch, sent the moment the last slot is taken, finds no
   worker, and so does one every ``lost_every`` seconds after it; job offers already
   in flight to full workers are refused; the critical page must arrive while
   dispatches are being lost;
4. recovery: the long jobs end together, under-capacity traffic resumes until every
   alert that fired has been resolved at the webhook;
5. bursts: every ``burst_every`` seconds more dispatches than slots arrive back to back; their
   jobs hold their slots until every dispatch of the burst has been answered (and
   ``burst_hold`` more), then end: the excess of each burst is lost whatever the
   machine's speed, the fleet is empty again between bursts, so Prometheus sees a free
   worker at most evaluations; the page must still come within its floor of the first
   loss;
6. burst recovery: under-capacity traffic until what the bursts fired has resolved;
7. assignment timeouts: the server withholds assignments, the workers' real 7.5 s
   assignment timeout expires, the timeout warning fires.

Alertmanager runs the pack's own example configuration
(``livekit_agents_exporter.rules.alertmanager``, committed as
``alerts/alertmanager.example.yaml``), its two receivers pointed at the webhook here and
its timers shortened.

Time is compressed: every ``for:``, lookback and window of the alert pack is scaled
by ``scale`` (1/60: a production minute becomes a second), except the 5m rate windows
that the recording rule names fix, and NoCapacity's window, which keeps its 8 scrape
intervals (``no_capacity_window``); Prometheus scrapes and evaluates every second and
Alertmanager waits one second before sending a group. Used by ``test_pager_path.py``
(asserts the order of events and the bounds) and ``report.py`` (prints the figures).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from livekit_agents_exporter.demo.fleet import Fleet
from livekit_agents_exporter.prometheus_runner import (
    Alertmanager,
    Prometheus,
    ScrapeTarget,
    free_port,
)
from livekit_agents_exporter.rules import RulesConfig, load_config, to_yaml
from livekit_agents_exporter.rules import render_rules as _render_rules
from livekit_agents_exporter.rules.alertmanager import alertmanager_config
from livekit_agents_exporter.rules.config import Duration
from livekit_agents_exporter.rules.dispatch_slo_config import SERVER_LOG_ALERTS
from livekit_agents_exporter.simulator import RateProfile, Simulator, SimulatorConfig
from livekit_agents_exporter.simulator.traffic import TrafficGenerator, lognormal_durations

LOST = "no_worker_available"
SCRAPE_JOB = "livekit-agents"  # the selector of the shipped rules

# exporter counter -> the simulator's count of the same thing on the wire
GROUND_TRUTH = {
    "livekit_agents_job_requests_total": "availability_requests",
    "livekit_agents_job_requests_accepted_total": "answers_available",
    "livekit_agents_job_requests_rejected_total": "answers_unavailable",
    "livekit_agents_assignment_timeouts_total": "assignments_withheld",
    "livekit_agents_job_assignments_total": "assignments_sent",
    "livekit_agents_jobs_finished_total": "jobs_finished",
}

NO_CAPACITY = "LiveKitAgentsNoCapacity"
CAPACITY_LOW = "LiveKitAgentsCapacityLow"
EXHAUSTION = "LiveKitAgentsCapacityExhaustionPredicted"
REJECTIONS = "LiveKitAgentsJobRejectionsHigh"
TIMEOUTS = "LiveKitAgentsAssignmentTimeouts"
EARLY_WARNINGS = (EXHAUSTION, CAPACITY_LOW)


@dataclass(frozen=True)
class ScenarioConfig:
    prometheus: str = "prometheus"
    alertmanager: str = "prometheus-alertmanager"
    workers: int = 3
    capacity: int = 10  # job slots per worker: load = running jobs / capacity
    threshold: float = 0.7  # every worker's load_threshold
    target_load: float = 0.7  # the simulated server's agents.target_load
    agent_name: str = "pager"
    cluster: str = "e2e"  # a target label, so descriptions and grouping carry it
    scale: float = 1 / 60  # every for:/lookback/window of the pack (not the 5m rates)
    no_capacity_window: float = 8.0  # 8 scrape intervals, as 2m is at 15 s (see scenario_rules)
    scrape_interval: float = 1.0
    evaluation_interval: float = 1.0
    group_wait: float = 1.0
    healthy_profile: str = "0:0.3,5:2,9:0.3,16:2,20:0.3,28:0.3"
    healthy_job_mean: float = 2.0
    ramp_step: float = 2.5  # one job every this many seconds: a linear ramp
    saturation_hold: float = 32.0  # from the last slot taken to the long jobs' end
    lost_every: float = 1.0  # arrivals while saturated
    in_flight_rate: float = 4.0  # offers already in flight to full workers, per second
    refusal_ratio_target: float = 0.3  # of all offers so far, then in-flight offers stop
    recovery_rate: float = 2.5
    recovery_job_mean: float = 1.5
    withheld_jobs: int = 3
    bursts: int = 6
    # dispatches per burst beyond the fleet's slots: lost. Each is refused by every worker;
    # few, so that JobRejectionsHigh (its 5m rate window is not compressed) resolves in the
    # burst recovery
    burst_excess: int = 2
    # The burst's jobs hold their slots until the simulator has answered every dispatch of
    # the burst, then burst_hold more (a burst of real calls holds its slots for minutes,
    # far longer than a scrape interval; here 2.5 scrape intervals): so the excess is lost
    # however fast the machine places the burst, and the fleet is free again well before
    # the next one.
    burst_hold: float = 2.5
    burst_job_limit: float = 30.0  # a job whose release never comes ends by itself
    seed: int = 11

    @property
    def slots_per_worker(self) -> int:
        """Jobs a worker takes before it refuses or wins no more: load >= min(threshold, target)."""
        usable = min(self.threshold, self.target_load)
        return next(k for k in range(1, self.capacity + 1) if k / self.capacity >= usable)

    @property
    def slots(self) -> int:
        return self.workers * self.slots_per_worker

    @property
    def burst_size(self) -> int:
        return self.slots + self.burst_excess

    @property
    def burst_every(self) -> float:
        """The gap between bursts that one page must bridge, from the pack's own durations.

        A burst's refusals keep NoCapacity's condition true for its window after the last
        refusal was scraped, and ``keep_firing_for`` holds the page that long again; the next
        burst's refusals show one scrape and one evaluation after they happen, and the last
        refusal's sample was taken up to one scrape and one evaluation before the window
        started to count. So bursts closer than ``window + keep_firing_for - 2 (scrape +
        evaluation)`` page once (at the defaults: 2m + 5m - 1m = 6 min); the phase runs
        exactly at that bound.
        """
        keep = load_config(None).alerts["no_capacity"].keep_firing_for.seconds * self.scale
        return self.no_capacity_window + keep - 2 * (self.scrape_interval
                                                     + self.evaluation_interval)


def scenario_rules(cfg: ScenarioConfig, disabled: tuple[str, ...] = ()) -> RulesConfig:
    """The shipped pack, every duration but the rate windows scaled by ``cfg.scale``
    (``disabled``: alerts left out)."""
    base = load_config(None, {"server_target_load": cfg.target_load})
    scaled_params = {
        key: {name: str(value.scaled(cfg.scale)) for name, value in a.params.items()
              if isinstance(value, Duration)}
        for key, a in base.alerts.items()
    }
    # NoCapacity's window spans as many scrape intervals as in production (2m of 15 s
    # scrapes: 8), not 2m / 60 = 2 s: a 2-scrape window drops a burst's refusals one
    # evaluation after the fleet was seen full, and the page flapped between bursts
    scaled_params["no_capacity"]["window"] = f"{cfg.no_capacity_window:g}s"
    alerts: dict[str, dict[str, Any]] = {key: dict(params)
                                         for key, params in scaled_params.items() if params}
    for key in disabled:
        alerts.setdefault(key, {})["enabled"] = False
    overrides = {"server_target_load": cfg.target_load,
                 "alerts": {k: v for k, v in alerts.items() if k not in SERVER_LOG_ALERTS},
                 # the server-log alerts' section (no server log is collected in this scenario)
                 "server_log": {"alerts": {k: v for k, v in alerts.items()
                                           if k in SERVER_LOG_ALERTS}}}
    return load_config(None, overrides).scaled(cfg.scale)


def render_rules(cfg: ScenarioConfig, disabled: tuple[str, ...] = ()) -> str:
    return to_yaml(_render_rules(scenario_rules(cfg, disabled)))


# --- what the scenario records ----------------------------------------------------------


def parse_time(text: str) -> float:
    """RFC 3339 with up to nanoseconds (Prometheus, Alertmanager) -> Unix seconds."""
    text = text.strip().replace("Z", "+00:00")
    main, dot, rest = text.partition(".")
    if dot:
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{main}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
    return datetime.fromisoformat(text).astimezone(timezone.utc).timestamp()


@dataclass
class Notification:
    """One POST from Alertmanager: a group of alerts sharing alertname and agent_name."""

    received: float
    status: str  # firing | resolved
    alertname: str
    alerts: list[dict[str, Any]]
    body: dict[str, Any]
    receiver: str = ""  # the Alertmanager receiver that sent it

    @property
    def starts_at(self) -> float:
        return min(parse_time(a["startsAt"]) for a in self.alerts)


@dataclass
class AlertEpisode:
    """One pending-or-firing life of an alert, as polled from Prometheus' alerts API."""

    alertname: str
    labels: dict[str, str]
    active_at: float  # Prometheus: first evaluation with the condition true
    first_seen: float
    firing_seen: float | None = None
    last_seen: float = 0.0


@dataclass
class DispatchRecord:
    at: float
    phase: str
    outcome: str
    worker_id: str | None


@dataclass
class Timeline:
    config: ScenarioConfig
    rules: RulesConfig
    sdk_version: str = ""
    refuses_when_full: bool = True
    started: float = 0.0
    phases: dict[str, list[float]] = field(default_factory=dict)  # name -> [start, end]
    dispatches: list[DispatchRecord] = field(default_factory=list)
    in_flight: list[tuple[float, bool]] = field(default_factory=list)  # (at, available)
    fleet_full: float | None = None  # the last slot's job reported running
    first_loss: float | None = None
    burst_first_loss: float | None = None
    burst_available_share: float | None = None  # evaluations seeing a free worker, bursts
    burst_outcomes: list[list[str]] = field(default_factory=list)  # per burst, sorted
    ramp_jobs: int = 0
    hooks_reported: bool = True  # the exporters report their hooks (exporter_hooks_attached)
    first_withheld: float | None = None
    exposed: dict[str, float] = field(default_factory=dict)  # exporter state -> first seen
    peak_jobs: dict[str, int] = field(default_factory=dict)  # phase -> most jobs running
    notifications: list[Notification] = field(default_factory=list)
    episodes: list[AlertEpisode] = field(default_factory=list)
    exporter_totals: dict[str, float] = field(default_factory=dict)
    prometheus_totals: dict[str, float] = field(default_factory=dict)
    truth_totals: dict[str, float] = field(default_factory=dict)
    truth_outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    workdir: str = ""
    wall_seconds: float = 0.0

    # -- reading it back ---------------------------------------------------------------
    def phase(self, name: str) -> tuple[float, float]:
        start, end = (self.phases.get(name, []) + [math.nan, math.nan])[:2]
        return start, end

    def received(self, alertname: str, status: str = "firing",
                 after: float = 0.0) -> Notification | None:
        """The first notification of that alert group with that status after ``after``."""
        return next((n for n in self.notifications if n.alertname == alertname
                     and n.status == status and n.received >= after), None)

    def fired_names(self, start: float = 0.0, end: float = math.inf) -> set[str]:
        return {n.alertname for n in self.notifications
                if n.status == "firing" and start <= n.received < end}

    def firing_in_prometheus(self, start: float, end: float) -> list[AlertEpisode]:
        return [e for e in self.episodes
                if e.firing_seen is not None and e.firing_seen < end and e.last_seen >= start]

    def pending_in_prometheus(self, start: float, end: float) -> list[AlertEpisode]:
        return [e for e in self.episodes if e.first_seen < end and e.last_seen >= start]

    def episode(self, alertname: str, after: float = 0.0) -> AlertEpisode | None:
        return next((e for e in self.episodes
                     if e.alertname == alertname and e.active_at >= after - 1), None)

    def lost(self) -> list[DispatchRecord]:
        return [d for d in self.dispatches if d.outcome == LOST]

    def to_json(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if k not in ("config", "rules")}
        data["config"] = self.config.__dict__
        data["notifications"] = [{k: v for k, v in n.__dict__.items() if k != "body"}
                                 for n in self.notifications]
        data["episodes"] = [e.__dict__ for e in self.episodes]
        data["dispatches"] = [d.__dict__ for d in self.dispatches]
        return json.dumps(data, indent=1, default=str)


class PhaseTimeout(Exception):
    pass


async def until(predicate: Callable[[], Any], timeout: float, what: str,
                interval: float = 0.05) -> Any:
    """Wait for a (possibly async) condition with a deadline, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise PhaseTimeout(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)


# --- the parts the scenario drives ----------------------------------------------------


class Webhook:
    """The receiver Alertmanager posts to: records every group notification."""

    def __init__(self, sink: list[Notification]) -> None:
        self.notifications = sink
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/alerts", self._receive)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/alerts"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = body.get("groupLabels", {}).get("alertname") or \
            body.get("commonLabels", {}).get("alertname", "")
        self.notifications.append(Notification(time.time(), body["status"], name,
                                               body.get("alerts", []), body,
                                               body.get("receiver", "")))
        return web.Response(text="ok")


class Scrape:
    """One worker's /metrics, parsed: ``value(name)`` sums every series of that name."""

    def __init__(self, text: str) -> None:
        self.samples = [(s.name, s.labels, s.value)
                        for fam in text_string_to_metric_families(text) for s in fam.samples]

    def value(self, name: str) -> float:
        return sum(v for n, _, v in self.samples if n == name)


def worker_available(s: Scrape, target_load: float) -> bool:
    """``instance:livekit_agents_worker_available:bool`` computed on a direct scrape."""
    return (s.value("livekit_agents_worker_registered") == 1
            and s.value("livekit_agents_worker_full") == 0
            and s.value("livekit_agents_worker_draining") == 0
            and s.value("livekit_agents_worker_load_ratio") < target_load
            and s.value("livekit_agents_worker_effective_load_ratio")
            < s.value("livekit_agents_worker_load_threshold_ratio"))


def fleet_headroom(scrapes: list[Scrape], target_load: float) -> float:
    """``agent_name:livekit_agents_capacity_headroom:ratio`` computed on direct scrapes."""
    room = cap = 0.0
    for s in scrapes:
        if s.value("livekit_agents_worker_registered") != 1 or \
                s.value("livekit_agents_worker_draining") == 1:
            continue
        c = min(s.value("livekit_agents_worker_load_threshold_ratio"), target_load)
        cap += c
        room += max(0.0, c - s.value("livekit_agents_worker_effective_load_ratio"))
    return room / cap if cap > 0 else 0.0


class Scenario:
    def __init__(self, cfg: ScenarioConfig, workdir: Path) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.tl = Timeline(cfg, scenario_rules(cfg), workdir=str(workdir))
        self.sim: Simulator | None = None
        self.fleet: Fleet | None = None
        self.prom: Prometheus | None = None
        self.am: Alertmanager | None = None
        self.webhook = Webhook(self.tl.notifications)
        self.session: aiohttp.ClientSession | None = None
        self._phase = "setup"
        self.end_of_load = math.inf  # when every long job of the ramp ends
        self._background: list[asyncio.Task[None]] = []

    # -- helpers -------------------------------------------------------------------------
    def _start_phase(self, name: str) -> None:
        now = time.time()
        if self._phase in self.tl.phases:
            self.tl.phases[self._phase][1] = now
        self._phase = name
        self.tl.phases[name] = [now, math.nan]

    @property
    def truth(self) -> Any:
        assert self.sim is not None
        return self.sim.truth

    def _workers_truth(self) -> list[Any]:
        return [w for w in self.truth.for_agent(self.cfg.agent_name) if w.connected]

    def _running(self) -> int:
        return self.truth.total("jobs_running", self.cfg.agent_name)

    def _refusal_ratio(self) -> float:
        offered = self.truth.total("availability_requests", self.cfg.agent_name)
        return self.truth.total("answers_unavailable", self.cfg.agent_name) / max(1, offered)

    async def _dispatch(self, duration: float | None = None,
                        metadata: dict[str, Any] | None = None) -> Any:
        assert self.sim is not None
        meta = metadata if metadata is not None else {"duration": round(duration or 0, 3)}
        result = await self.sim.dispatch(self.cfg.agent_name, meta)
        now = time.time()
        self.tl.dispatches.append(DispatchRecord(now, self._phase, result.outcome,
                                                 result.worker_id))
        if result.outcome == LOST and self.tl.first_loss is None:
            self.tl.first_loss = now
        if result.outcome == LOST and self._phase == "bursts" and self.tl.burst_first_loss is None:
            self.tl.burst_first_loss = now
        return result

    async def scrape_workers(self) -> list[Scrape]:
        assert self.fleet is not None and self.session is not None

        async def one(url: str) -> Scrape:
            assert self.session is not None
            async with self.session.get(url) as resp:
                return Scrape(await resp.text())

        return list(await asyncio.gather(*(one(w.metrics_url) for w in self.fleet.workers)))

    async def _prom(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    def _received(self, alertname: str, status: str = "firing", after: float = 0.0) -> bool:
        return self.tl.received(alertname, status, after) is not None

    # -- background watchers ---------------------------------------------------------------
    async def _watch_alerts(self) -> None:
        """Polls Prometheus' alerts: when each alert went pending and firing."""
        assert self.prom is not None
        index: dict[tuple[str, str, str], AlertEpisode] = {}
        while True:
            try:
                alerts = await self._prom(self.prom.alerts)
            except Exception:  # noqa: BLE001 - a missed poll only coarsens the record
                await asyncio.sleep(0.25)
                continue
            now = time.time()
            for a in alerts:
                labels = dict(a["labels"])
                key = (labels.get("alertname", ""), json.dumps(labels, sort_keys=True),
                       a["activeAt"])
                ep = index.get(key)
                if ep is None:
                    ep = AlertEpisode(labels.get("alertname", ""), labels,
                                      parse_time(a["activeAt"]), now)
                    index[key] = ep
                    self.tl.episodes.append(ep)
                ep.last_seen = now
                if a["state"] == "firing" and ep.firing_seen is None:
                    ep.firing_seen = now
            await asyncio.sleep(0.25)

    async def _watch_exporters(self) -> None:
        """Scrapes the workers directly: when the exporters first showed each state."""
        rules = self.tl.rules
        marks = {
            "headroom<exhaustion": rules.alert("capacity_exhaustion_predicted")
            .params["headroom_below"],
            "headroom<low": rules.alert("capacity_low").params["headroom_below"],
        }
        while True:
            await asyncio.sleep(0.1)
            running = self._running()
            if running > self.tl.peak_jobs.get(self._phase, -1):
                self.tl.peak_jobs[self._phase] = running
            if self._phase not in ("ramp", "saturation"):
                continue
            try:
                scrapes = await self.scrape_workers()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                continue
            now = time.time()
            headroom = fleet_headroom(scrapes, self.cfg.target_load)
            for mark, below in marks.items():
                if headroom < below:
                    self.tl.exposed.setdefault(mark, now)
            if not any(worker_available(s, self.cfg.target_load) for s in scrapes):
                self.tl.exposed.setdefault("no_capacity", now)

    # -- the run ---------------------------------------------------------------------------
    async def run(self) -> Timeline:
        from livekit.agents import __version__ as sdk_version
        from livekit.agents import worker as sdk_worker

        self.tl.sdk_version = sdk_version
        self.tl.refuses_when_full = hasattr(sdk_worker, "AgentServer")  # 1.8 yes, 1.2 no
        self.tl.started = time.time()
        t0 = time.monotonic()
        try:
            await self._setup()
            for phase in (self._healthy, self._ramp, self._saturation, self._recovery,
                          self._bursts, self._burst_recovery, self._assignment_timeouts):
                await phase()
        except PhaseTimeout as exc:
            self.tl.failures.append(f"{self._phase}: {exc}")
        except Exception as exc:  # noqa: BLE001 - recorded, the tests report it
            self.tl.failures.append(f"{self._phase}: {type(exc).__name__}: {exc}")
        finally:
            try:
                if self.sim is not None and self.fleet is not None and self.fleet.workers:
                    await self._settle()
            except Exception as exc:  # noqa: BLE001 - reported, the scenario goes on
                self.tl.failures.append(f"settle: {type(exc).__name__}: {exc}")
            finally:
                await self._teardown()
                self.tl.wall_seconds = time.monotonic() - t0
        return self.tl

    async def _setup(self) -> None:
        cfg = self.cfg
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        self.sim = Simulator(SimulatorConfig(api_key="e2e", api_secret="e2e-" + "s" * 40,
                                             target_load=cfg.target_load, seed=cfg.seed))
        await self.sim.start()
        self.fleet = Fleet(url=self.sim.url, api_key="e2e", api_secret="e2e-" + "s" * 40,
                           agent_name=cfg.agent_name, capacity=cfg.capacity,
                           threshold=cfg.threshold, log_dir=self.workdir)
        self.fleet.start([free_port() for _ in range(cfg.workers)])

        def registered() -> bool:
            assert self.fleet is not None
            dead = self.fleet.dead()
            if dead:
                raise RuntimeError(f"{dead[0].name} exited: "
                                   f"{dead[0].log_path.read_text()[-1500:]}")
            workers = self._workers_truth()
            return len(workers) >= cfg.workers and all(w.status_updates for w in workers)

        await until(registered, 60, f"{cfg.workers} workers to register")
        # An exporter that predates hook reporting exports exporter_hooks_attached at 0
        # for every hook; ExporterHooksDetached would then fire on every worker, rightly,
        # and say nothing about the pager path: leave it out and record why.
        hooks = sum(s.value("livekit_agents_exporter_hooks_attached")
                    for s in await self.scrape_workers())
        self.tl.hooks_reported = hooks > 0
        disabled = () if self.tl.hooks_reported else ("exporter_hooks_detached",)
        self.tl.rules = scenario_rules(cfg, disabled)
        await self.webhook.start()
        (self.workdir / "alertmanager").mkdir(exist_ok=True)
        # the shipped routing: pages and tickets both reach the webhook, by receiver name
        routing = alertmanager_config(self.tl.rules, pager_url=self.webhook.url,
                                      ticket_url=self.webhook.url,
                                      group_wait=f"{cfg.group_wait:g}s", group_interval="1s",
                                      repeat_interval="1h")
        self.am = Alertmanager(binary=cfg.alertmanager, workdir=self.workdir / "alertmanager",
                               config=routing)
        await asyncio.to_thread(self.am.start)
        rules_path = self.workdir / "rules.yaml"
        rules_path.write_text(render_rules(cfg, disabled))
        targets = [ScrapeTarget(SCRAPE_JOB, [f"127.0.0.1:{w.metrics_port}"
                                             for w in self.fleet.workers],
                                {"cluster": cfg.cluster})]
        self.prom = Prometheus(targets, [rules_path], binary=cfg.prometheus,
                               scrape_interval=f"{cfg.scrape_interval:g}s",
                               evaluation_interval=f"{cfg.evaluation_interval:g}s",
                               alertmanager_url=self.am.url, workdir=self.workdir / "prometheus")
        await asyncio.to_thread(self.prom.start)

        async def rules_see_fleet() -> bool:
            assert self.prom is not None
            result = await self._prom(self.prom.query,
                                      "agent_name:livekit_agents_workers_available:sum")
            return bool(result) and float(result[0]["value"][1]) == cfg.workers

        await until(rules_see_fleet, 30, "Prometheus to scrape the fleet and evaluate the rules",
                    interval=0.2)
        self._background = [asyncio.ensure_future(self._watch_alerts()),
                            asyncio.ensure_future(self._watch_exporters())]

    async def _healthy(self) -> None:
        cfg = self.cfg
        self._start_phase("healthy")
        await TrafficGenerator(_Recorded(self), RateProfile.parse(cfg.healthy_profile),
                               durations=lognormal_durations(cfg.healthy_job_mean),
                               agent_name=cfg.agent_name, seed=cfg.seed).run()
        await until(lambda: self._running() == 0, 30, "the healthy phase's jobs to end")
        # the exporters must have seen them end too, before the ramp starts from empty
        await until(self._fleet_empty_in_exporters, 10, "the exporters to show an empty fleet")

    async def _fleet_empty_in_exporters(self) -> bool:
        scrapes = await self.scrape_workers()
        return all(s.value("livekit_agents_worker_load_ratio") == 0 for s in scrapes)

    def _fleet_is_full(self) -> bool:
        return all(w.jobs_running >= self.cfg.slots_per_worker for w in self._workers_truth())

    async def _ramp(self) -> None:
        cfg = self.cfg
        self._start_phase("ramp")
        start = time.time()
        # every long job ends together, saturation_hold after the planned last slot
        self.end_of_load = start + (cfg.slots - 1) * cfg.ramp_step + cfg.saturation_hold
        for i in range(cfg.slots * 2):
            await asyncio.sleep(max(0.0, start + i * cfg.ramp_step - time.time()))
            before = self._running()
            result = await self._dispatch(self.end_of_load - time.time())
            if result.outcome == LOST:
                return  # lost before the simulator saw the last slot taken
            self.tl.ramp_jobs += 1
            if result.outcome == "assigned":
                await until(lambda b=before: self._running() > b, 10, "a ramp job to run")
            if self._fleet_is_full():
                self.tl.fleet_full = time.time()
                return
        raise PhaseTimeout(f"the fleet was not full after {cfg.slots * 2} ramp jobs")

    async def _saturation(self) -> None:
        cfg = self.cfg
        self._start_phase("saturation")
        # arrivals keep coming: the first one right as the last slot is taken
        while self.tl.first_loss is None:
            await self._dispatch(self.end_of_load - time.time())
            if self.tl.first_loss is None:
                await asyncio.sleep(0.5)  # 1.2 oversubscribes until its status says full
            if time.time() > self.end_of_load - 5:
                raise PhaseTimeout("no dispatch was lost although the fleet is full")
        offers = asyncio.ensure_future(self._offers_in_flight())
        try:
            while time.time() < self.end_of_load - cfg.lost_every:
                await asyncio.sleep(cfg.lost_every)
                await self._dispatch(self.end_of_load - time.time())
        finally:
            await offers

    async def _offers_in_flight(self) -> None:
        """Offers the server sent before it saw the workers full: they reach full workers."""
        assert self.sim is not None
        cfg = self.cfg
        accepted_in_a_row = 0
        i = 0
        while (self._refusal_ratio() < cfg.refusal_ratio_target and accepted_in_a_row < 10
               and time.time() < self.end_of_load - 5):
            workers = self._workers_truth()
            worker = workers[i % len(workers)]
            i += 1
            answer = await self.sim.offer(worker.worker_id, cfg.agent_name,
                                          {"duration": round(self.end_of_load - time.time(), 3)})
            self.tl.in_flight.append((time.time(), answer.available))
            accepted_in_a_row = accepted_in_a_row + 1 if answer.available else 0
            await asyncio.sleep(1 / cfg.in_flight_rate)

    async def _recovery(self) -> None:
        await until(lambda: self._running() == 0, 20, "the long jobs to end")
        await self._recover("recovery")

    async def _bursts(self) -> None:
        cfg = self.cfg
        self._start_phase("bursts")
        start = time.time()
        for i in range(cfg.bursts):
            await asyncio.sleep(max(0.0, start + i * cfg.burst_every - time.time()))
            release = self.workdir / f"burst-{i}.release"
            meta = {"duration": cfg.burst_job_limit, "release": str(release)}
            # one dispatch right after the other, each as soon as the last one's job runs:
            # the workers' reported status is stale (2.5 s) and offers keep reaching them
            # past full. Answered concurrently, 1.8's reserved-slot estimate collapses while
            # its load value lags its running jobs (load / running jobs reads 0 per job),
            # and a burst could oversubscribe the fleet by as much as it likes.
            results = []
            for _ in range(cfg.burst_size):
                before = self._running()
                results.append(result := await self._dispatch(metadata=dict(meta)))
                if result.outcome == "assigned":
                    # the next offer comes once this job runs: a worker's load then counts it
                    await until(lambda b=before: self._running() > b, 10, "a burst job to run")
            self.tl.burst_outcomes.append(sorted(r.outcome for r in results))
            await asyncio.sleep(cfg.burst_hold)  # the slots stay taken a while after the burst
            release.touch()
        await until(lambda: self._running() == 0, 20, "the burst jobs to end")
        end = time.time()
        assert self.prom is not None
        series = await self._prom(self.prom.query_range,
                                  f'agent_name:livekit_agents_workers_available:sum'
                                  f'{{agent_name="{cfg.agent_name}"}}', start, end,
                                  cfg.evaluation_interval)
        values = [float(v) for _, v in series[0]["values"]] if series else []
        if values:
            self.tl.burst_available_share = sum(v > 0 for v in values) / len(values)

    async def _burst_recovery(self) -> None:
        await self._recover("burst_recovery")

    def _still_firing(self) -> set[str]:
        """Alerts whose latest notification at the webhook says firing."""
        latest: dict[str, str] = {}
        for n in self.tl.notifications:
            latest[n.alertname] = n.status
        return {name for name, status in latest.items() if status == "firing"}

    async def _recover(self, name: str) -> None:
        """Under-capacity traffic until every alert that fired has resolved at the webhook."""
        cfg = self.cfg
        self._start_phase(name)
        profile = RateProfile.parse(f"0:{cfg.recovery_rate},5:{cfg.recovery_rate}")
        deadline = time.monotonic() + 90
        chunk = 0
        while self._still_firing():
            if time.monotonic() > deadline:
                raise PhaseTimeout(f"timed out after 90s waiting for "
                                   f"{sorted(self._still_firing())} to resolve")
            chunk += 1
            await TrafficGenerator(_Recorded(self), profile,
                                   durations=lognormal_durations(cfg.recovery_job_mean),
                                   agent_name=cfg.agent_name, seed=cfg.seed + chunk).run()
        await until(lambda: self._running() == 0, 20, f"the {name} jobs to end")
        # and nothing is left pending in Prometheus (the last trouble's windows have passed)
        await until(self._prometheus_quiet, 60, "Prometheus to show no active alert",
                    interval=0.25)

    async def _prometheus_quiet(self) -> bool:
        assert self.prom is not None
        return not await self._prom(self.prom.alerts)

    async def _assignment_timeouts(self) -> None:
        assert self.sim is not None
        cfg = self.cfg
        self._start_phase("assignment_timeouts")
        self.sim.withhold_assignments = True
        try:
            for _ in range(cfg.withheld_jobs):
                result = await self._dispatch(5.0)
                if result.outcome == "assigned" and self.tl.first_withheld is None:
                    self.tl.first_withheld = time.time()
                await asyncio.sleep(0.3)
            await until(lambda: self._received(TIMEOUTS), 60,
                        f"{TIMEOUTS} to reach the webhook", interval=0.1)
        finally:
            self.sim.withhold_assignments = False

    async def _exporter_totals(self) -> dict[str, float]:
        scrapes = await self.scrape_workers()
        return {name: sum(s.value(name) for s in scrapes) for name in GROUND_TRUTH}

    def _truth_totals(self) -> dict[str, float]:
        return {name: float(self.truth.total(field_name, self.cfg.agent_name))
                for name, field_name in GROUND_TRUTH.items()}

    async def _settle(self) -> None:
        """Once nothing is in flight: the exporters' totals, Prometheus' and the truth."""
        self._start_phase("settle")
        await until(lambda: self._running() == 0, 20, "every job to end")
        try:
            await until(lambda: self._totals_match(), 15,
                        "the exporters' totals to equal the simulator's", interval=0.2)
        except PhaseTimeout as exc:
            self.tl.failures.append(f"settle: {exc}")
        self.tl.exporter_totals = await self._exporter_totals()
        self.tl.truth_totals = self._truth_totals()
        self.tl.truth_outcomes = dict(self.truth.outcomes_for_agent(self.cfg.agent_name))
        if self.prom is not None:
            want = self.tl.exporter_totals

            async def prometheus_caught_up() -> bool:
                self.tl.prometheus_totals = await self._prometheus_totals()
                return self.tl.prometheus_totals == want

            try:
                await until(prometheus_caught_up, 15, "Prometheus to scrape the final totals",
                            interval=0.3)
            except PhaseTimeout as exc:
                self.tl.failures.append(f"settle: {exc}")
        self.tl.phases["settle"][1] = time.time()

    async def _totals_match(self) -> bool:
        return await self._exporter_totals() == self._truth_totals()

    async def _prometheus_totals(self) -> dict[str, float]:
        assert self.prom is not None
        names = "|".join(GROUND_TRUTH)
        result = await self._prom(self.prom.query, f'sum by (__name__) ({{__name__=~"{names}", '
                                                   f'job="{SCRAPE_JOB}"}})')
        got = {r["metric"]["__name__"]: float(r["value"][1]) for r in result}
        return {name: got.get(name, math.nan) for name in GROUND_TRUTH}

    async def _teardown(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        # Prometheus first: a fleet going away must not page anyone
        for part in (self.prom, self.am):
            if part is not None:
                await asyncio.to_thread(part.stop)
        await self.webhook.stop()
        if self.fleet is not None:
            await asyncio.to_thread(self.fleet.stop)
        if self.sim is not None:
            await self.sim.stop()
        if self.session is not None:
            await self.session.close()


class _Recorded:
    """The simulator as the traffic generator sees it, with every dispatch recorded."""

    def __init__(self, scenario: Scenario) -> None:
        self._scenario = scenario

    async def dispatch(self, agent_name: str, metadata: dict[str, Any]) -> Any:
        assert agent_name == self._scenario.cfg.agent_name
        return await self._scenario._dispatch(metadata=metadata)


async def run_scenario(cfg: ScenarioConfig, workdir: Path) -> Timeline:
    workdir.mkdir(parents=True, exist_ok=True)
    return await Scenario(cfg, workdir).run()



# --- the figures both the tests and the report read -------------------------------------

ASSIGNMENT_TIMEOUT = 7.5  # livekit-agents' own constant, not shortened for the test


@dataclass
class Figures:
    floor: float  # scrape + evaluation + for: of the page
    page_after_loss: float | None  # first lost dispatch -> critical page at the webhook
    page_after_full: float | None  # last slot taken -> critical page
    exposure: float | None  # first lost dispatch -> the exporters show no capacity
    detection: float | None  # exporters show it -> Prometheus has the alert pending
    pending_for: float | None  # pending -> firing (the for:)
    delivery: float | None  # firing -> webhook (Alertmanager group_wait included)
    warning_lead: dict[str, float | None]  # early warning at the webhook before the loss
    warning_condition: dict[str, float | None]  # exporters cross the threshold before loss
    healthy_firing: int  # alerts fired in the healthy phase (target 0)
    healthy_pending: int  # alerts that went pending in the healthy phase
    timeout_floor: float
    timeout_page: float | None  # first withheld assignment accepted -> timeout alert
    burst_page_after_loss: float | None  # bursts: first lost dispatch -> page at the webhook
    burst_lost: int  # dispatches lost in the bursts phase
    burst_lost_before_page: int  # ... of them before the page reached the webhook
    burst_available_share: float | None  # evaluations in the bursts phase seeing a free worker


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def figures(tl: Timeline) -> Figures:
    cfg = tl.config
    page = tl.received(NO_CAPACITY)
    no_capacity_for = tl.rules.alert("no_capacity").for_.seconds
    episode = tl.episode(NO_CAPACITY)
    exposed = tl.exposed.get("no_capacity")
    healthy = tl.phase("healthy")
    ramp_start, _ = tl.phase("ramp")
    conditions = {EXHAUSTION: "headroom<exhaustion", CAPACITY_LOW: "headroom<low"}
    timeout = tl.received(TIMEOUTS)
    bursts_start, _ = tl.phase("bursts")
    burst_page = tl.received(NO_CAPACITY, after=bursts_start) if tl.burst_first_loss else None
    burst_lost = [d for d in tl.lost() if d.phase == "bursts"]
    return Figures(
        floor=cfg.scrape_interval + cfg.evaluation_interval + no_capacity_for,
        page_after_loss=_minus(page and page.received, tl.first_loss),
        page_after_full=_minus(page and page.received, tl.fleet_full),
        exposure=_minus(exposed, tl.first_loss),
        detection=_minus(episode and episode.active_at, exposed),
        pending_for=_minus(page and page.starts_at, episode and episode.active_at),
        delivery=_minus(page and page.received, page and page.starts_at),
        warning_lead={name: _minus(tl.first_loss, n and n.received)
                      for name in EARLY_WARNINGS for n in [tl.received(name)]},
        warning_condition={name: _minus(tl.first_loss, tl.exposed.get(mark))
                           for name, mark in conditions.items()},
        healthy_firing=len(healthy_false_alerts(tl)),
        healthy_pending=len(tl.pending_in_prometheus(healthy[0], ramp_start)),
        timeout_floor=ASSIGNMENT_TIMEOUT + cfg.scrape_interval + cfg.evaluation_interval
        + tl.rules.alert("assignment_timeouts").for_.seconds,
        timeout_page=_minus(timeout and timeout.received, tl.first_withheld),
        burst_page_after_loss=_minus(burst_page and burst_page.received, tl.burst_first_loss),
        burst_lost=len(burst_lost),
        burst_lost_before_page=sum(1 for d in burst_lost
                                   if burst_page is None or d.at < burst_page.received),
        burst_available_share=tl.burst_available_share,
    )


def healthy_false_alerts(tl: Timeline) -> set[str]:
    """Alerts that fired in the healthy phase, or went pending there and fired later."""
    start, _ = tl.phase("healthy")
    end, _ = tl.phase("ramp")
    return tl.fired_names(start, end) | {
        e.alertname for e in tl.episodes
        if e.firing_seen is not None and start <= e.active_at < end}


def describe(tl: Timeline) -> str:
    """The run as lines of text, seconds from its start: for failure messages and logs."""
    s = tl.started

    def rel(t: float | None) -> str:
        return "-" if t is None or math.isnan(t) else f"{t - s:7.2f}"

    lines = [f"SDK {tl.sdk_version}, {tl.wall_seconds:.0f}s wall, work dir {tl.workdir}, "
             f"hooks reported: {tl.hooks_reported}"]
    lines += [f"failure: {f}" for f in tl.failures]
    lines += [f"phase {name:20} {rel(a)} .. {rel(b)}" for name, (a, b) in tl.phases.items()]
    lines.append(f"bursts: first lost dispatch {rel(tl.burst_first_loss)}, evaluations seeing a "
                 f"free worker {tl.burst_available_share}, assigned per burst "
                 f"{[o.count('assigned') for o in tl.burst_outcomes]} of "
                 f"{[len(o) for o in tl.burst_outcomes]}")
    lines.append(f"fleet full {rel(tl.fleet_full)}, first lost dispatch {rel(tl.first_loss)}, "
                 f"{len(tl.lost())} lost, ramp jobs {tl.ramp_jobs}, first withheld "
                 f"{rel(tl.first_withheld)}")
    lines += [f"exporters show {k:20} {rel(v)}" for k, v in tl.exposed.items()]
    lines += [f"webhook {rel(n.received)} {n.status:8} {n.alertname} via {n.receiver} "
              f"(startsAt {rel(n.starts_at)})" for n in tl.notifications]
    lines += [f"prometheus {e.alertname} pending {rel(e.active_at)} firing "
              f"{rel(e.firing_seen)} last seen {rel(e.last_seen)}" for e in tl.episodes]
    lines.append(f"exporters {tl.exporter_totals}")
    lines.append(f"truth     {tl.truth_totals}")
    lines.append(f"prometheus {tl.prometheus_totals}")
    return "\n".join(lines)
