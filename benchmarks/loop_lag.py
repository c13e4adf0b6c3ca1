"""Event-loop lag of the worker while its metrics are scraped 10 times a second.

One worker runs with ``instrument()`` and the SDK's own ``prometheus_port``, a light job
mix flowing throughout, and a probe in its event loop (``bench_worker.py --lag-file``:
sleep 5 ms, record how late the wake-up was). The benchmark rotates through phases:
no scrapes, the exporter's endpoint scraped at 10 Hz (with Prometheus' ``Accept``
header), and the SDK's endpoint scraped at 10 Hz. The order rotates every round, and
each phase's samples are compared with the no-scrape phase of the same round.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from pathlib import Path
from typing import Any

import aiohttp

from harness import JobMix, drive, median, quantile, simulator, start_worker, stop_worker
from stats import bootstrap_ci

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,"
                     "application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
SCRAPE_HZ = 10.0
TRAFFIC = JobMix(rate=10.0, job_s=0.5, reject_share=0.1)
SKIP_S = 0.2  # samples this close to a phase change are left out


async def scrape_loop(session: aiohttp.ClientSession, url: str, until: float) -> int:
    period = 1.0 / SCRAPE_HZ
    next_at = time.monotonic()
    n = 0
    while next_at < until:
        async with session.get(url, headers={"Accept": PROMETHEUS_ACCEPT}) as resp:
            await resp.read()
        n += 1
        next_at += period
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return n


def _stats(lags_ms: list[float]) -> dict[str, float]:
    return {"n": len(lags_ms), "p50": median(lags_ms), "p99": quantile(lags_ms, 0.99),
            "p999": quantile(lags_ms, 0.999), "max": max(lags_ms) if lags_ms else float("nan")}


async def run_async(quick: bool, workdir: Path, log: Any,
                    rounds: int | None = None) -> dict[str, Any]:
    default_rounds, phase_s = (2, 3.0) if quick else (6, 5.0)
    rounds = rounds or default_rounds  # run.py --rounds lag=N (the report's sizing)
    lag_file = workdir / "lag.bin"
    phases: list[tuple[int, str, float, float]] = []  # round, condition, start, end
    scrapes = {"exporter": 0, "sdk": 0}
    async with simulator() as sim:
        worker = await start_worker(sim, instrument=True, sdk_metrics=True, lag_file=lag_file,
                                    log_dir=workdir)
        urls = {"exporter": worker.exporter_url, "sdk": worker.sdk_metrics_url}
        total = rounds * 3 * phase_s + 2.0
        traffic = asyncio.ensure_future(drive(sim, worker.worker_id, TRAFFIC, total + 1, seed=11))
        try:
            await asyncio.sleep(1.0)
            async with aiohttp.ClientSession() as session:
                conditions = ["none", "exporter", "sdk"]
                for r in range(rounds):
                    order = conditions[r % 3:] + conditions[:r % 3]
                    for cond in order:
                        start = time.monotonic()
                        end = start + phase_s
                        if cond == "none":
                            await asyncio.sleep(phase_s)
                        else:
                            scrapes[cond] += await scrape_loop(session, urls[cond], end)
                        phases.append((r, cond, start, time.monotonic()))
                    log(f"  loop lag: round {r + 1}/{rounds}")
        finally:
            traffic.cancel()
            with contextlib.suppress(BaseException):
                await traffic
            await stop_worker(sim, worker)
    raw = array("d")
    raw.frombytes(lag_file.read_bytes())
    samples = list(zip(raw[0::2], raw[1::2], strict=False))
    by_phase: dict[tuple[int, str], list[float]] = {}
    for r, cond, start, end in phases:
        by_phase[(r, cond)] = [lag * 1e3 for at, lag in samples if start + SKIP_S <= at < end]
    result: dict[str, Any] = {"rounds": rounds, "phase_s": phase_s, "scrape_hz": SCRAPE_HZ,
                              "traffic_rate": TRAFFIC.rate, "scrapes": scrapes}
    for cond in ("none", "exporter", "sdk"):
        pooled = [x for (r, c), v in by_phase.items() if c == cond for x in v]
        result[cond] = _stats(pooled)
    for cond in ("exporter", "sdk"):
        d99 = [quantile(by_phase[(r, cond)], 0.99) - quantile(by_phase[(r, "none")], 0.99)
               for r in range(rounds)]
        d50 = [median(by_phase[(r, cond)]) - median(by_phase[(r, "none")]) for r in range(rounds)]
        result[f"{cond}_added"] = {"p99_pooled": result[cond]["p99"] - result["none"]["p99"],
                                   "p50_pooled": result[cond]["p50"] - result["none"]["p50"],
                                   "p99_paired": median(d99), "p99_paired_ci": bootstrap_ci(d99),
                                   "p50_paired": median(d50)}
    return result


def run(quick: bool, workdir: Path, log: Any = print, rounds: int | None = None) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(run_async(quick, workdir, log, rounds))
