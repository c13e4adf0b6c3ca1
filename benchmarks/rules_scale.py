"""Rule cost at scale: the bundled rules in a real Prometheus over synthetic fleets.

How the fleet is made
---------------------
The per-worker exposition is a real one: the ``/metrics`` text of an instrumented worker
captured after it ran jobs (every series the exporter exposes, process collectors
included). Each simulated worker is a copy with its own ``instance`` and one of 20
``agent_name`` values, counters scaled per worker and growing at the rates the captured
worker had (its value over its age: ``load_fnc`` about twice a second, as the SDK calls
it), and load, full and active-job gauges varying per worker and over time.

The copies are served by one HTTP server, one path per agent name (20 targets of the job
``livekit-agents``, ``honor_labels: true`` so each copy keeps its ``instance``). Every
sample carries an explicit timestamp: scrape number *j* of a target returns the samples
of time ``start - history + 15 s x j``, so Prometheus ingests a 15-second-resolution
history as fast as it can scrape (a fleet scraped every 15 s, compressed in time). The
history is the longest range the rules read from the workers' own series (1h, for
WorkerStuckFull's full seconds), and the timeline runs past the measurement window, so that
every range the rules compute sees a full window (60 samples for 15m, 240 for 1h) as in a
long-running Prometheus. The part of the history older than the other ranges (15m) is
served first, by a second scrape job of its own every 0.5 s and with only the series read
over the longer range (``job`` honoured from the body, so they are the same series): no
rule reads the other series that far back, and a whole hour of every series at one step per
3 s scrape did not fit in the run (about 20 minutes of catch-up at 10,000 workers). Once a
target has served its whole timeline it serves an empty body, so that no ingestion
competes with the evaluations being measured.

Both the shipped pack and alert pack v1 (``rules_v1.yaml``, the pack before v2) are
measured on the same fleet in the same run, so their ratio does not depend on the machine.

What is measured
----------------
``evaluationTime`` of each rule group from ``/api/v1/rules`` (distinct evaluations, every
5 s), cross-checked against ``prometheus_rule_group_last_duration_seconds``; head series
and resident memory of Prometheus from its own ``/metrics``.
"""

from __future__ import annotations

import math
import re
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from harness import median
from livekit_agents_exporter.prometheus_runner import Prometheus
from livekit_agents_exporter.prometheus_syntax import parse_duration
from livekit_agents_exporter.rules import load_config, render_rules, to_yaml

AGENT_NAMES = 20
STEP_S = 15.0  # the production scrape interval the timeline has
HISTORY_INTERVAL_S = 0.5  # scrape interval of the job serving the long-range history
V1_RULES = Path(__file__).resolve().parent / "rules_v1.yaml"
# Evaluated at the interval the budget speaks of (each group within half of it): at a shorter
# one the groups, which run concurrently, would compete for the cores all the time and each
# would read slower than it runs in production
EVAL_INTERVAL_S = 15.0
JOB = "livekit-agents"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$")
# a worker's own series with a range: not a recorded series (those contain a colon), nor
# the server log's (livekit_agents_server_*, from mtail: no worker's history)
_RAW_RANGE = re.compile(r"(?<![\w:])livekit_agents_(?!server_)\w+(?:\{[^}]*\})?\[(\w+)\]")
_COUNTERISH = ("_total", "_bucket", "_count", "_sum")
_LOADS = {"livekit_agents_worker_load_ratio": "load",
          "livekit_agents_worker_effective_load_ratio": "effective",
          "livekit_agents_worker_full": "full",
          "livekit_agents_worker_active_jobs": "active",
          "livekit_agents_worker_registered": "one",
          "livekit_agents_worker_draining": "zero"}


# --- the per-worker template ---------------------------------------------------------------

@dataclass
class Family:
    header: list[str]
    samples: list[tuple[str, str, float]] = field(default_factory=list)  # name, labels, value


def parse_template(text: str) -> list[Family]:
    """Families of a text-format (0.0.4) exposition, in order, header lines kept."""
    families: list[Family] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            if line.startswith("# HELP") or not families or families[-1].samples:
                families.append(Family([line]))
            else:
                families[-1].header.append(line)
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise ValueError(f"cannot parse exposition line {line!r}")
        name, labels, value = match.groups()
        if not families:
            families.append(Family([]))
        families[-1].samples.append((name, (labels or "{}")[1:-1], float(value)))
    return families


def series_per_worker(families: list[Family]) -> dict[str, int]:
    total = sum(len(f.samples) for f in families)
    own = sum(1 for f in families for name, _, _ in f.samples if name.startswith("livekit_agents_"))
    return {"total": total, "exporter": own, "runtime": total - own}


class Shard:
    """The workers of one agent name, rendered at any point of the timeline."""

    def __init__(self, families: list[Family], workers: list[int], agent: str,
                 age_s: float) -> None:
        self.step_growth = STEP_S / age_s  # a counter gains its captured value every age_s
        self.headers: list[str] = []
        self.rows: list[list[tuple[str, str, float, float, int]]] = []
        for fam in families:
            rows = []
            for i in workers:
                scale = 0.5 + (i * 2654435761 % 1000) / 1000  # per-worker traffic share
                for name, labels, value in fam.samples:
                    labels = re.sub(r'agent_name="[^"]*"', f'agent_name="{agent}"', labels)
                    inner = f'instance="worker-{i:05d}:10781"' + (f",{labels}" if labels else "")
                    kind = _LOADS.get(name) or (
                        "counter" if name.endswith(_COUNTERISH) else "const")
                    rows.append((f"{name}{{{inner}}}", kind, value * scale, value, i))
            self.headers.append("\n".join(fam.header))
            self.rows.append(rows)

    def render(self, step: int, ts_ms: int, only: frozenset[str] | None = None) -> bytes:
        """Step ``step`` of every series, or with ``only``, of those names alone (labelled
        ``job``, for the history job whose ``honor_labels`` makes them the same series)."""
        out: list[str] = []
        growth = 1.0 + self.step_growth * step
        for header, rows in zip(self.headers, self.rows, strict=True):
            if only is not None:
                rows = [row for row in rows if row[0].split("{", 1)[0] in only]
                if not rows:
                    continue
            if header:
                out.append(header)
            for prefix, kind, scaled, value, i in rows:
                if only is not None:
                    prefix = prefix.replace("{", f'{{job="{JOB}",', 1)
                if kind == "counter":
                    v = scaled * growth
                elif kind == "const":
                    v = value
                else:
                    load = ((i * 7919 + step * 104729) % 1000) / 1000
                    v = {"load": load, "effective": min(1.0, load + 0.05),
                         "full": float(load >= 0.7), "active": float(round(load * 8)),
                         "one": 1.0, "zero": 0.0}[kind]
                out.append(f"{prefix} {v!r} {ts_ms}")
        out.append("")
        return "\n".join(out).encode()


class FleetServer:
    """Serves each shard's timeline, one step per scrape, then empty bodies: first the
    long-range history (``/history/K``, only the ``long_names``), then the rest
    (``/metrics/K``, every series; empty until that shard's history is served)."""

    def __init__(self, families: list[Family], workers: int, start: float, steps: int,
                 history_s: float, age_s: float, history_steps: int = 0,
                 long_names: frozenset[str] = frozenset()) -> None:
        names = [f"agent-{k:02d}" for k in range(AGENT_NAMES)]
        self.shards = [Shard(families, list(range(k, workers, AGENT_NAMES)), names[k], age_s)
                       for k in range(AGENT_NAMES)]
        self.first_ts = start - history_s + STEP_S
        self.steps = steps
        self.history_steps = history_steps
        self.long_names = long_names
        self.next_step = [0] * AGENT_NAMES
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                body = server.body(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                try:
                    self.wfile.write(body or b"")
                except (BrokenPipeError, ConnectionResetError):
                    # Prometheus gave up on the scrape (stopping, or past its timeout): that
                    # step is missing from its history, which "samples per window" shows
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def body(self, path: str) -> bytes | None:
        match = re.fullmatch(r"/(metrics|history)/(\d+)", path)
        if match is None or int(match.group(2)) >= AGENT_NAMES:
            return None
        history, k = match.group(1) == "history", int(match.group(2))
        with self._lock:
            step = self.next_step[k]
            if history != (step < self.history_steps):
                return b""  # the other job's part of the timeline
            self.next_step[k] = min(step + 1, self.steps)
        if step >= self.steps:
            return b""
        ts_ms = int((self.first_ts + STEP_S * step) * 1000)
        return self.shards[k].render(step, ts_ms, self.long_names if history else None)

    @property
    def done(self) -> bool:
        return min(self.next_step) >= self.steps

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- one fleet size -----------------------------------------------------------------------

def _scrape_config(address: str, interval: float, job: str = JOB,
                   path: str = "metrics") -> dict[str, Any]:
    return {
        "job_name": job, "honor_labels": True,
        # Prometheus durations take whole units: 0.5 s is "500ms"
        "scrape_interval": f"{interval * 1000:.0f}ms", "scrape_timeout": f"{interval * 1000:.0f}ms",
        "static_configs": [{"targets": [address],
                            "labels": {"__metrics_path__": f"/{path}/{k}", "shard": str(k)}}
                           for k in range(AGENT_NAMES)],
    }


def _own_metrics(url: str) -> dict[str, float]:
    wanted = ("prometheus_tsdb_head_series ", "process_resident_memory_bytes ",
              "process_cpu_seconds_total ")
    out: dict[str, float] = {}
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:  # noqa: S310 - loopback
        for line in resp.read().decode().splitlines():
            for prefix in wanted:
                if line.startswith(prefix):
                    out[prefix.strip()] = float(line.split()[-1])
            if line.startswith("prometheus_rule_group_last_duration_seconds{"):
                group = re.search(r'rule_group="[^"]*;([^"]*)"', line)
                if group:
                    out[f"last_duration:{group.group(1)}"] = float(line.split()[-1])
    return out


def raw_ranges(rules: dict[str, Any]) -> dict[str, float]:
    """Per worker series name (not recorded series), the longest range the rules read it
    over, in seconds."""
    out: dict[str, float] = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            for m in _RAW_RANGE.finditer(rule["expr"]):
                name = m.group(0).split("{", 1)[0].split("[", 1)[0]
                out[name] = max(out.get(name, 0.0), parse_duration(m.group(1)) or 0.0)
    return out


def longest_raw_range(rules: dict[str, Any]) -> float:
    """Seconds of the longest range the rules read from the workers' own series (not from
    recorded series): the history every fleet must have for the rules to do all their work."""
    return max(raw_ranges(rules).values(), default=300.0)


def history_split(rules: dict[str, Any]) -> tuple[float, frozenset[str]]:
    """(seconds of history every series needs, the names needing more): the longest range
    but the longest one, and the series read over the longest one."""
    ranges = raw_ranges(rules)
    longest = max(ranges.values(), default=300.0)
    dense = max((r for r in ranges.values() if r < longest), default=longest)
    return dense, frozenset(n for n, r in ranges.items() if r > dense)


def template_age(families: list[Family], captured_at: float) -> float:
    """Seconds the captured worker had run: its counters divided by this are its rates."""
    started = next(v for f in families for name, _, v in f.samples
                   if name == "process_start_time_seconds")
    return max(1.0, captured_at - started)


def measure_fleet(families: list[Family], workers: int, *, age_s: float, evaluations: int,
                  workdir: Path, log: Any = print, rules: dict[str, Any] | None = None,
                  pack: str = "shipped") -> dict[str, Any]:
    scrape_interval = 1.0 if workers <= 1000 else 3.0
    rules = rules if rules is not None else render_rules(load_config())
    history_s = longest_raw_range(rules)
    dense_s, long_names = history_split(rules)
    history_steps = math.ceil((history_s - dense_s) / STEP_S)
    # The timeline must outlast the catch-up (one step per scrape) and the measurement,
    # so that every evaluation measured sees full windows:
    # steps * STEP_S >= history_s + history_steps * HISTORY_INTERVAL_S
    #                   + (steps - history_steps) * scrape_interval + measurement.
    measurement = (evaluations + 3) * EVAL_INTERVAL_S + 10
    steps = math.ceil((history_s + measurement + history_steps * (
        HISTORY_INTERVAL_S - scrape_interval)) / (STEP_S - scrape_interval))
    steps = max(steps, history_steps + 1)
    catch_up_budget = (history_steps * HISTORY_INTERVAL_S
                       + (steps - history_steps) * scrape_interval) * 3 + 60
    start = time.time()
    t_build = time.monotonic()
    fleet = FleetServer(families, workers, start, steps, history_s, age_s, history_steps,
                        long_names)
    fleet.start()
    build_s = time.monotonic() - t_build
    rules_path = workdir / "livekit-agents.rules.yaml"
    workdir.mkdir(parents=True, exist_ok=True)
    rules_path.write_text(to_yaml(rules))
    prom = Prometheus([], [rules_path], evaluation_interval=f"{EVAL_INTERVAL_S:g}s",
                      scrape_interval=f"{scrape_interval:g}s", workdir=workdir / f"prom-{workers}")
    config = yaml.safe_load(prom.config_path.read_text())
    config["scrape_configs"] = [_scrape_config(fleet.address, scrape_interval)]
    if history_steps:
        config["scrape_configs"].append(_scrape_config(
            fleet.address, HISTORY_INTERVAL_S, f"{JOB}-history", "history"))
    prom.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        prom.start()
        t0 = time.monotonic()
        # wait until every target served its whole timeline, then one more evaluation
        while not fleet.done:
            if time.monotonic() - t0 > catch_up_budget:
                raise RuntimeError(f"{workers} workers: Prometheus did not ingest the timeline "
                                   f"within {catch_up_budget:.0f}s")
            time.sleep(0.5)
        ingest_s = time.monotonic() - t0
        time.sleep(scrape_interval + 1)
        log(f"  {workers} workers, pack {pack}: timeline of {steps} steps "
            f"({history_steps} of long-range history) ingested in {ingest_s:.0f}s")
        seen: dict[str, dict[str, float]] = {}
        per_rule: dict[str, list[float]] = {}
        ready_at = time.time()
        cpu_at_ready = _own_metrics(prom.url)["process_cpu_seconds_total"]
        t_ready = time.monotonic()
        deadline = time.monotonic() + (evaluations + 6) * EVAL_INTERVAL_S + 120
        while time.monotonic() < deadline:
            groups = prom.api("rules")["groups"]
            for g in groups:
                at = g.get("lastEvaluation", "")
                if _after(at, ready_at):
                    seen.setdefault(g["name"], {})[at] = float(g["evaluationTime"])
                    if len(seen[g["name"]]) <= evaluations:
                        for i, rule in enumerate(g["rules"]):
                            quantile = (rule.get("labels") or {}).get("quantile")
                            name = rule["name"] + (f"{{quantile={quantile}}}" if quantile else "")
                            per_rule.setdefault(f"{g['name']}/{i:02d}/{name}", []).append(
                                float(rule.get("evaluationTime", 0.0)))
            if len(seen) == len(groups) and all(len(v) >= evaluations for v in seen.values()):
                break
            time.sleep(1.0)
        own = _own_metrics(prom.url)
        # ingestion is paused (the targets serve empty bodies): the CPU is rule evaluation's
        cores = (own["process_cpu_seconds_total"] - cpu_at_ready) / (time.monotonic() - t_ready)
        checks = {
            "workers": prom.query(f'count(livekit_agents_worker_registered{{job="{JOB}"}})'),
            "headroom": prom.query("count(agent_name:livekit_agents_capacity_headroom:ratio)"),
            "rates": prom.query("count(agent_name:livekit_agents_job_requests:rate5m > 0)"),
            "samples_in_window": prom.query(
                f'max(count_over_time(livekit_agents_job_requests_total{{job="{JOB}"}}'
                f'[{dense_s:.0f}s]))'),
            **{f"samples_in_{history_s:.0f}s:{name}": prom.query(
                f'min(count_over_time({name}{{job="{JOB}"}}[{history_s:.0f}s]))')
               for name in sorted(long_names)},
            "alerts_firing": prom.query('count(ALERTS{alertstate="firing"}) or vector(0)'),
            "alerts_pending": prom.query('count(ALERTS{alertstate="pending"}) or vector(0)'),
        }
    finally:
        prom.stop()
        fleet.stop()
    group_times = {name: list(times.values()) for name, times in seen.items()}
    result: dict[str, Any] = {
        "workers": workers,
        "pack": pack,
        "agent_names": AGENT_NAMES,
        "scrape_interval_s": scrape_interval,
        "history_s": history_s,
        "dense_history_s": dense_s,
        "long_range_series": sorted(long_names),
        "build_s": round(build_s, 1),
        "ingest_s": round(ingest_s, 1),
        "groups": {name: {"median_s": median(t), "max_s": max(t), "n": len(t)}
                   for name, t in group_times.items()},
        "head_series": own.get("prometheus_tsdb_head_series"),
        "prometheus_rss_bytes": own.get("process_resident_memory_bytes"),
        "prometheus_cpu_cores": round(cores, 3),
        "last_duration_metric": {k.split(":", 1)[1]: v for k, v in own.items()
                                 if k.startswith("last_duration:")},
        "checks": {k: (float(v[0]["value"][1]) if v else 0.0) for k, v in checks.items()},
        "top_rules": sorted(((median(v), k) for k, v in per_rule.items()), reverse=True)[:5],
    }
    result["total_median_s"] = sum(g["median_s"] for g in result["groups"].values())
    return result


def _after(rfc3339: str, epoch: float) -> bool:
    if not rfc3339 or rfc3339.startswith("0001"):
        return False
    from datetime import datetime

    text = re.sub(r"(\.\d{6})\d*", r"\1", rfc3339.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp() > epoch


def run(template_text: str, captured_at: float, sizes: list[int], evaluations: int,
        workdir: Path, log: Any = print) -> dict[str, Any]:
    families = parse_template(template_text)
    per_worker = series_per_worker(families)
    age_s = template_age(families, captured_at)
    log(f"rule cost: {per_worker['total']} series per worker "
        f"({per_worker['exporter']} from the exporter), counters at the rates of a worker "
        f"{age_s:.0f} s old")
    results, baseline = [], []
    v1 = yaml.safe_load(V1_RULES.read_text())
    for n in sizes:
        # the same fleet for both packs, one after the other
        results.append(measure_fleet(families, n, age_s=age_s, evaluations=evaluations,
                                     workdir=workdir / f"rules-{n}", log=log))
        baseline.append(measure_fleet(families, n, age_s=age_s, evaluations=evaluations,
                                      workdir=workdir / f"rules-v1-{n}", log=log, rules=v1,
                                      pack="v1"))
    ratios = [{"workers": s["workers"],
               "shipped_over_v1": (s["total_median_s"] / b["total_median_s"]
                                   if b["total_median_s"] else math.nan)}
              for s, b in zip(results, baseline, strict=True)]
    return {"series_per_worker": per_worker, "fleets": results, "baseline_v1": baseline,
            "shipped_over_v1": ratios, "eval_interval_s": EVAL_INTERVAL_S,
            "agent_names": AGENT_NAMES}
