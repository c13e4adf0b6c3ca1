"""Scrape cost: the exporter's ``/metrics`` next to the SDK's own ``prometheus_port`` endpoint.

One worker process serves both (``instrument()`` and ``prometheus_port`` on the same
worker), with the process executor so that the SDK exposes every metric it has. After a
few jobs, the two endpoints are scraped alternately (the order flipping every round) on
keep-alive connections with the ``Accept`` header Prometheus sends, each endpoint about 5 times a
second; the exporter is also
scraped asking for the classic text format. Latency is measured on the client, from
sending the request to having read the whole body.

Series are the sample lines of a scrape; "own" series are the ones named by the
endpoint's own prefix (``livekit_agents_`` for the exporter, ``lk_agents_`` for the SDK),
the rest being the Python runtime's process and platform collectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

import aiohttp

from harness import JobMix, drive, median, quantile, simulator, start_worker, stop_worker
from loop_lag import PROMETHEUS_ACCEPT
from stats import bootstrap_ci

TEXT_ACCEPT = "text/plain;version=0.0.4"
OWN_PREFIX = {"exporter": "livekit_agents_", "exporter_text": "livekit_agents_",
              "sdk": "lk_agents_"}


def count_series(body: str, own_prefix: str) -> dict[str, int]:
    lines = [ln for ln in body.splitlines() if ln and not ln.startswith("#")]
    own = sum(1 for ln in lines if ln.startswith(own_prefix))
    return {"total": len(lines), "own": own}


async def _get(session: aiohttp.ClientSession, url: str, accept: str) -> tuple[float, bytes, str]:
    start = time.perf_counter()
    async with session.get(url, headers={"Accept": accept}) as resp:
        body = await resp.read()
        ctype = resp.headers.get("Content-Type", "")
    return time.perf_counter() - start, body, ctype


def _cpu_ns(pid: int) -> int:
    """CPU time of every thread of a process so far, from the scheduler (nanoseconds)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
    return total


def _endpoint_pids(worker: Any) -> list[int]:
    return [p.pid for p in worker.ps.children(recursive=True)
            if "endpoint_process" in " ".join(p.cmdline())]


async def scrape_cpu(worker: Any, url: str, pairs: int, segment_s: float = 3.0,
                     hz: float = 10.0) -> dict[str, Any]:
    """CPU one scrape costs, in the worker and in the endpoint process: segments scraped at
    ``hz`` against idle segments of the same length, alternating, differences per pair."""
    per_scrape: dict[str, list[float]] = {"worker": [], "endpoint": [], "total": []}
    async with aiohttp.ClientSession() as session:
        for pair in range(pairs):
            used: dict[str, dict[str, float]] = {}
            counts: dict[str, int] = {}
            for cond in (("idle", "scraped") if pair % 2 == 0 else ("scraped", "idle")):
                eps = _endpoint_pids(worker)
                w0, e0 = _cpu_ns(worker.proc.pid), sum(_cpu_ns(p) for p in eps)
                end, n = time.monotonic() + segment_s, 0
                while time.monotonic() < end:
                    if cond == "scraped":
                        await _get(session, url, PROMETHEUS_ACCEPT)
                        n += 1
                    await asyncio.sleep(1 / hz)
                used[cond] = {"worker": (_cpu_ns(worker.proc.pid) - w0) / 1e9,
                              "endpoint": (sum(_cpu_ns(p) for p in eps) - e0) / 1e9}
                counts[cond] = n
            for part in ("worker", "endpoint"):
                per_scrape[part].append((used["scraped"][part] - used["idle"][part])
                                        / max(1, counts["scraped"]))
            per_scrape["total"].append(per_scrape["worker"][-1] + per_scrape["endpoint"][-1])
    result: dict[str, Any] = {"pairs": pairs, "segment_s": segment_s, "hz": hz}
    for part, values in per_scrape.items():
        ms = [v * 1e3 for v in values]
        result[part] = {"ms_per_scrape": median(ms), "ms_per_scrape_ci": bootstrap_ci(ms)}
    return result


async def run_async(quick: bool, workdir: Path, log: Any,
                    cpu_pairs: int | None = None) -> dict[str, Any]:
    rounds = 60 if quick else 200
    async with simulator() as sim:
        worker = await start_worker(sim, instrument=True, sdk_metrics=True, executor="process",
                                    log_dir=workdir, capacity=8)
        try:
            # a few jobs so that every metric of both endpoints has been touched
            await drive(sim, worker.worker_id, JobMix(rate=10.0, job_s=0.2), 3.0, seed=5)
            await asyncio.sleep(2.0)
            targets = {"exporter": (worker.exporter_url, PROMETHEUS_ACCEPT),
                       "sdk": (worker.sdk_metrics_url, PROMETHEUS_ACCEPT),
                       "exporter_text": (worker.exporter_url, TEXT_ACCEPT)}
            sessions = {k: aiohttp.ClientSession() for k in targets}
            latencies: dict[str, list[float]] = {k: [] for k in targets}
            last: dict[str, tuple[bytes, str]] = {}
            try:
                for k, (url, accept) in targets.items():  # connect and warm up
                    for _ in range(5):
                        await _get(sessions[k], url, accept)
                names = list(targets)
                for r in range(rounds):
                    order = names if r % 2 == 0 else names[::-1]
                    for k in order:
                        url, accept = targets[k]
                        seconds, body, ctype = await _get(sessions[k], url, accept)
                        latencies[k].append(seconds * 1e3)
                        last[k] = (body, ctype)
                        # each endpoint at about 5 scrapes/s: under the exporter's render
                        # spacing (a burst of 5, then 10 a second), which back-to-back
                        # scrapes would measure instead of the scrape
                        await asyncio.sleep(0.07)
                captured_at = time.time()
                log("  scrape: CPU per scrape, worker and endpoint process")
                # run.py --rounds scrape=N (the report's sizing)
                cpu = await scrape_cpu(worker, worker.exporter_url,
                                       cpu_pairs or (4 if quick else 10))
            finally:
                for s in sessions.values():
                    await s.close()
        finally:
            await stop_worker(sim, worker)
    result: dict[str, Any] = {"rounds": rounds, "cpu": cpu}
    for k, lat in latencies.items():
        body, ctype = last[k]
        result[k] = {"p50_ms": median(lat), "p99_ms": quantile(lat, 0.99), "bytes": len(body),
                     "content_type": ctype.split(";")[0],
                     "series": count_series(body.decode(), OWN_PREFIX[k])}
    ratios = [e / s for e, s in zip(latencies["exporter"], latencies["sdk"], strict=True)]
    result["latency_ratio_p50"] = result["exporter"]["p50_ms"] / result["sdk"]["p50_ms"]
    result["latency_ratio_paired"] = median(ratios)
    result["own_series_ratio"] = (result["exporter"]["series"]["own"]
                                  / max(1, result["sdk"]["series"]["own"]))
    result["total_series_ratio"] = (result["exporter"]["series"]["total"]
                                    / max(1, result["sdk"]["series"]["total"]))
    result["template"] = last["exporter_text"][0].decode()
    result["template_captured_at"] = captured_at
    return result


def run(quick: bool, workdir: Path, log: Any = print,
        cpu_pairs: int | None = None) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    log("  scrape: exporter vs SDK endpoint")
    return asyncio.run(run_async(quick, workdir, log, cpu_pairs))
