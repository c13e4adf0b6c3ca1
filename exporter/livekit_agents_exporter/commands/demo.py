"""``demo``: watch a fleet saturate, get refused, lose dispatches, page, and recover.

Starts the dispatch simulator, N real instrumented livekit-agents workers (each its
own process with its own ``/metrics``), drives a traffic profile from healthy to
saturated and back, and shows it live. With a ``prometheus`` binary it also runs
Prometheus with the bundled rules (``for:`` durations scaled down to demo time)
and reports alerts pending, firing and resolving.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from ..cli import UsageError

DEFAULT_PROFILE = "0:0.1,40:0.2,110:1.2,150:1.2,190:0.1,220:0.1"
DEMO_FOR_SCALE = 0.05
INSTALL_HINT = ("Prometheus not found: install it (Debian/Ubuntu: apt-get install prometheus) "
                "or pass --prometheus PATH to also see the alerts; carrying on without it.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=3, help="worker processes (default 3)")
    p.add_argument("--capacity", type=int, default=4,
                   help="job slots per worker: load = running jobs / capacity (default 4)")
    p.add_argument("--threshold", type=float, default=0.7,
                   help="load_threshold of every worker (default 0.7)")
    p.add_argument("--target-load", type=float, default=0.7,
                   help="the simulated server's agents.target_load (default 0.7)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds to run (default: the profile's length)")
    p.add_argument("--profile", default=DEFAULT_PROFILE,
                   help="arrival rate profile 'time_s:jobs_per_s,...' (default ramps past capacity "
                        "and back)")
    p.add_argument("--job-duration", type=float, default=12.0,
                   help="mean job length in seconds, lognormal (default 12)")
    p.add_argument("--metrics-port", type=int, default=10781,
                   help="first worker's /metrics port; the others follow (default 10781)")
    p.add_argument("--sim-port", type=int, default=0, help="simulator port (default: any free)")
    p.add_argument("--prometheus", metavar="PATH", default=None,
                   help="prometheus binary (default: 'prometheus' on PATH)")
    p.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus")
    p.add_argument("--mtail", metavar="PATH", default=None,
                   help="mtail binary that counts lost dispatches from the simulated server's "
                        "log (default: 'mtail' on PATH; none: the demo goes without)")
    p.add_argument("--seed", type=int, default=None, help="random seed for reproducible traffic")


def _validate(args: argparse.Namespace) -> None:
    from ..simulator.traffic import RateProfile

    if not 1 <= args.workers <= 32:
        raise UsageError(f"--workers must be between 1 and 32, got {args.workers}")
    if not 1 <= args.capacity <= 64:
        raise UsageError(f"--capacity must be between 1 and 64, got {args.capacity}")
    for flag, value in (("--threshold", args.threshold), ("--target-load", args.target_load)):
        if not 0 < value <= 1:
            raise UsageError(f"{flag} must be in (0, 1], got {value}")
    if args.job_duration <= 0:
        raise UsageError(f"--job-duration must be positive, got {args.job_duration}")
    if args.duration is not None and args.duration <= 0:
        raise UsageError(f"--duration must be positive, got {args.duration}")
    for flag, port in (("--metrics-port", args.metrics_port), ("--sim-port", args.sim_port)):
        if not 0 <= port <= 65535 - args.workers:
            raise UsageError(f"{flag} must be a TCP port, got {port}")
    try:
        args.rate_profile = RateProfile.parse(args.profile)
    except ValueError as exc:
        raise UsageError(f"--profile: {exc}") from None
    _check_ports_free(args)


PORT_HINT = ('choose another with --metrics-port / --sim-port (through make: '
             'make demo DEMO_ARGS="--metrics-port 10791")')


def _check_ports_free(args: argparse.Namespace) -> None:
    """Bind each port as the servers will (SO_REUSEADDR, like aiohttp's default), so that a
    socket left in TIME-WAIT by the previous run does not count as a port in use."""
    import socket

    ports = [args.metrics_port + i for i in range(args.workers)]
    if args.sim_port:
        ports.append(args.sim_port)
    for port in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                raise UsageError(f"port {port} is already in use; {PORT_HINT}") from None


def run(args: argparse.Namespace) -> int:
    from ..extras import require

    try:
        require("livekit", "the demo")
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    _validate(args)
    return asyncio.run(_Demo(args).run())


class _Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        from ..demo.view import Screen

        self.args = args
        self.screen = Screen()
        self.duration = args.duration or args.rate_profile.duration
        self.api_key, self.api_secret = "demo", secrets.token_urlsafe(32)
        self.tmp = tempfile.TemporaryDirectory(prefix="lkx-demo-")
        self.workdir = Path(self.tmp.name)
        self.stopping = asyncio.Event()
        self.live: Any = None
        self.server_log: Any = None

    async def run(self) -> int:
        from ..demo.fleet import Fleet
        from ..simulator import Simulator, SimulatorConfig

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        server_log = self.server_log = self._start_server_log()
        sim = Simulator(SimulatorConfig(api_key=self.api_key, api_secret=self.api_secret,
                                        target_load=self.args.target_load, host="127.0.0.1",
                                        port=self.args.sim_port, seed=self.args.seed,
                                        server_log=str(server_log.log) if server_log else None))
        await sim.start()
        fleet = Fleet(url=sim.url, api_key=self.api_key, api_secret=self.api_secret,
                      agent_name="demo", capacity=self.args.capacity,
                      threshold=self.args.threshold, log_dir=self.workdir)
        prometheus = None
        try:
            fleet.start([self.args.metrics_port + i for i in range(self.args.workers)])
            for w in fleet.workers:
                self.screen.say(f"{w.name}: metrics at {w.metrics_url}")
            self.screen.say(f"simulator: {sim.url} (ground truth at {sim.metrics_url})")
            prometheus = self._start_prometheus(sim, fleet, server_log)
            await self._wait_registered(sim, fleet)
            if self.stopping.is_set():
                return 130
            await self._drive(sim, fleet, prometheus)
            self.screen.say(self._summary(sim))
            return 130 if self.stopping.is_set() else 0
        finally:
            fleet.stop()
            if prometheus is not None:
                prometheus.stop()
            if server_log is not None:
                server_log.stop()
            await sim.stop()
            self.tmp.cleanup()

    def _start_server_log(self) -> Any:
        """The simulated server's log read by mtail through the log filter, when mtail is
        installed: the lost dispatches then also come from the log, as in production."""
        from ..prometheus_runner import find_binary
        from ..server_log.pipeline import ServerLogPipeline

        binary = find_binary("mtail", self.args.mtail)
        if binary is None:
            if self.args.mtail:
                raise UsageError(f"--mtail {self.args.mtail}: no such executable")
            return None
        log = self.workdir / "livekit-server.log"
        log.touch()
        pipeline = ServerLogPipeline(log, self.workdir / "server-log", mtail_binary=binary)
        try:
            pipeline.start()
        except RuntimeError as exc:
            self.screen.say(f"mtail did not start ({exc}); carrying on without the server log.")
            return None
        self.screen.say(f"server log: {log}, counted by mtail at {pipeline.metrics_url}")
        return pipeline

    def _start_prometheus(self, sim: Any, fleet: Any, server_log: Any = None) -> Any:
        from ..prometheus_runner import Prometheus, ScrapeTarget, find_binary

        if self.args.no_prometheus:
            return None
        binary = find_binary("prometheus", self.args.prometheus)
        if binary is None:
            if self.args.prometheus:
                raise UsageError(f"--prometheus {self.args.prometheus}: no such executable")
            self.screen.say(INSTALL_HINT)
            return None
        rules = self.workdir / "rules.yaml"
        rules.write_text(_demo_rules(self.args.target_load))
        targets = [ScrapeTarget("livekit-agents",
                                [f"127.0.0.1:{w.metrics_port}" for w in fleet.workers])]
        if server_log is not None:
            targets.append(ScrapeTarget("livekit-server-log", [server_log.target]))
        prom = Prometheus(targets, [rules], binary=binary, scrape_interval="1s",
                          evaluation_interval="1s", workdir=self.workdir / "prometheus")
        try:
            prom.start()
        except RuntimeError as exc:
            self.screen.say(f"Prometheus did not start ({exc}); carrying on without it.")
            return None
        self.screen.say(f"prometheus: {prom.url} (alerts at {prom.url}/alerts)")
        return prom

    async def _wait_registered(self, sim: Any, fleet: Any) -> None:
        deadline = time.monotonic() + 60
        while not self.stopping.is_set():
            dead = fleet.dead()
            if dead:
                log = dead[0].log_path.read_text()[-1500:]
                raise UsageError(f"{dead[0].name} exited during start-up:\n{log}")
            try:
                await sim.wait_for_workers(len(fleet.workers), agent_name="demo", timeout=1)
                return
            except (TimeoutError, asyncio.TimeoutError):
                if time.monotonic() > deadline:
                    raise UsageError("workers did not register within 60 s; logs in "
                                     f"{self.workdir}") from None

    async def _drive(self, sim: Any, fleet: Any, prometheus: Any) -> None:
        from ..demo.live import LiveView
        from ..simulator.traffic import TrafficGenerator, lognormal_durations

        traffic = TrafficGenerator(sim, self.args.rate_profile,
                                   durations=lognormal_durations(self.args.job_duration),
                                   agent_name="demo", seed=self.args.seed)
        live = self.live = LiveView(self.screen, fleet, sim, prometheus,
                                    self.args.target_load, self.duration, traffic,
                                    server_log_url=self.server_log and self.server_log.metrics_url)
        driver = asyncio.ensure_future(traffic.run(duration=self.duration))
        viewer = asyncio.ensure_future(live.run())
        stop = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait([driver, stop], return_when=asyncio.FIRST_COMPLETED)
        for task in (driver, viewer, stop):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(driver, viewer, stop, return_exceptions=True)
        if not self.stopping.is_set():
            await self._final_snapshot(sim, live)

    async def _final_snapshot(self, sim: Any, live: Any) -> None:
        """One last look once the answers in flight have landed, for the summary."""
        import aiohttp

        want = sim.truth.total("availability_requests", "demo")
        deadline = time.monotonic() + 5
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                live.last = await live.snapshot(session)
                if sum(w.offers for w in live.last.workers) >= want or \
                        time.monotonic() > deadline:
                    return
                await asyncio.sleep(0.2)

    def _summary(self, sim: Any) -> str:
        counts = sim.truth.outcomes_for_agent("demo")
        lines = ["demo finished: dispatches " +
                 (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none")]
        last = self.live.last if self.live is not None else None
        if last is not None and last.pager is not None:
            lines.append("  " + last.pager.line())
        if last is not None:
            # what the exporters counted against what the simulated server sent and saw
            truth = sim.truth
            pairs = (("offers", sum(w.offers for w in last.workers), "availability_requests"),
                     ("refused", sum(w.refused for w in last.workers), "answers_unavailable"),
                     ("assignment timeouts", sum(w.timeouts for w in last.workers),
                      "assignments_withheld"))
            shown = []
            for label, counted, field_name in pairs:
                real = truth.total(field_name, "demo")
                shown.append(f"{label} {counted} {'=' if counted == real else '!='} {real}")
            lines.append("  exporters vs simulator ground truth: " + ", ".join(shown))
            lines.append(f"  calls lost (only the server knows): "
                         f"{counts.get('no_worker_available', 0)}")
        for row in last.workers if last else []:
            served = "metrics served" if row.up else "metrics NOT served"
            lines.append(f"  {row.name}: {row.offers} offers, {row.refused} refused, "
                         f"{row.timeouts} assignment timeouts ({served})")
        if self.server_log is not None:
            lines.append(self._server_log_summary(counts))
        return "\n".join(lines)

    def _server_log_summary(self, counts: dict[str, int]) -> str:
        """mtail's totals once it has read every dispatch line (a few seconds at most)."""
        import urllib.request

        from .. import metrics
        from ..demo.live import parse_worker

        logged = sum(v for k, v in counts.items() if k != "rejected_terminate")
        values: dict[str, float] = {}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.server_log.metrics_url, timeout=2) as resp:
                    values = parse_worker(resp.read().decode())
            except OSError:
                values = {}
            if values.get(metrics.series("server_dispatches"), 0) >= logged:
                break
            time.sleep(0.1)
        lost = int(values.get(metrics.series("server_dispatches_lost"), 0))
        assigned = int(values.get(metrics.series("server_dispatches_assigned"), 0))
        return f"server log (mtail): {lost} lost, {assigned} assigned"


def _demo_rules(target_load: float) -> str:
    """The bundled rules with ``for:`` durations scaled down to demo time (1m -> 3s)."""
    from ..rules import load_config, render_rules, to_yaml

    config = load_config(None, {"server_target_load": target_load}).scaled(DEMO_FOR_SCALE)
    return to_yaml(render_rules(config))
