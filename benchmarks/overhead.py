"""Worker overhead: the same worker with and without ``instrument()``, side by side.

Two worker processes run the same code against the same simulator; one calls
``instrument()``. They take turns: in each round one of them receives a segment of the
job mix while the other idles, then the other receives the very same offers (same seed),
the order alternating between rounds (ABBA), so that drift on a shared machine hits both.
Each segment is measured as:

- worker CPU: ``psutil`` user+system time of the worker process (and any child) over the
  segment plus a settle period in which the segment's jobs end, divided by the offers
  sent: CPU per job request, and CPU at 100 requests/s as a share of one core;
- dispatch latency, on the simulator side: offer sent -> answer received, and offer
  sent -> JS_RUNNING received.

Two job mixes: "mixed" (offers accepted and run as short jobs, a share rejected by the
request handler) and "saturated" (the worker's load_fnc says full, so the SDK refuses
every offer itself: the cheapest path through the SDK, where the hooks weigh most).
Per pair of processes, resident memory is read after registration and after the mixed
segments.

The results are ratios of paired rounds (adjacent in time), summarised by their median
and a bootstrap 95% interval over rounds.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from harness import (
    JobMix,
    TimedSimulator,
    WorkerProcess,
    drive,
    median,
    quantile,
    simulator,
    start_worker,
    stop_worker,
)

SETTLE_S = 0.8


def bootstrap_ci(values: list[float], stat: Any = median, n: int = 2000,
                 seed: int = 7) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    rng = random.Random(seed)
    stats = sorted(stat([rng.choice(values) for _ in values]) for _ in range(n))
    return stats[int(0.025 * n)], stats[int(0.975 * n) - 1]


async def _segment(sim: TimedSimulator, worker: WorkerProcess, mix: JobMix, seconds: float,
                   seed: int) -> dict[str, Any]:
    cpu0 = worker.cpu_seconds()
    t0 = time.monotonic()
    sent = await drive(sim, worker.worker_id, mix, seconds, seed)
    t1 = time.monotonic()
    await asyncio.sleep(SETTLE_S)
    cpu = worker.cpu_seconds() - cpu0
    answers, running = sim.latencies_between(t0, t1)
    return {"cpu_s": cpu, "offers": sent, "cpu_per_offer_us": cpu / max(sent, 1) * 1e6,
            "answer_ms": [a * 1e3 for a in answers], "running_ms": [r * 1e3 for r in running]}


async def run_pair(sim: TimedSimulator, *, rounds: int, sat_rounds: int, seconds: float,
                   seed: int, log_dir: Path, log: Any) -> dict[str, Any]:
    bare = await start_worker(sim, instrument=False, log_dir=log_dir)
    hooked = await start_worker(sim, instrument=True, log_dir=log_dir)
    workers = {"bare": bare, "exporter": hooked}
    out: dict[str, Any] = {"segments": {"mixed": [], "saturated": []}}
    try:
        await asyncio.sleep(1.0)
        out["rss_start"] = {k: w.rss_bytes() for k, w in workers.items()}
        mix = JobMix()
        for w in workers.values():  # warm-up: thread pools, first jobs, caches
            await drive(sim, w.worker_id, mix, 2.0, seed)
        await asyncio.sleep(SETTLE_S)
        for phase, n in (("mixed", rounds), ("saturated", sat_rounds)):
            if phase == "saturated":
                for w in workers.values():
                    w.toggle_saturation()
                await asyncio.sleep(1.0)  # the next load_fnc sample says full
            for r in range(n):
                order = ["bare", "exporter"] if r % 2 == 0 else ["exporter", "bare"]
                pair: dict[str, Any] = {}
                for name in order:
                    pair[name] = await _segment(sim, workers[name], mix, seconds,
                                                seed * 1000 + r)
                out["segments"][phase].append(pair)
                log(f"    {phase} round {r + 1}/{n}: CPU/offer bare "
                    f"{pair['bare']['cpu_per_offer_us']:.0f} us, exporter "
                    f"{pair['exporter']['cpu_per_offer_us']:.0f} us")
            if phase == "mixed":
                out["rss_after_jobs"] = {k: w.rss_bytes() for k, w in workers.items()}
        out["offers_per_worker"] = sum(
            p["bare"]["offers"] for ph in out["segments"].values() for p in ph)
    finally:
        for w in workers.values():
            await stop_worker(sim, w)
    return out


def summarise(pairs: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for phase in ("mixed", "saturated"):
        rounds = [p for pr in pairs for p in pr["segments"][phase]]
        if not rounds:
            continue
        ratios = [r["exporter"]["cpu_per_offer_us"] / r["bare"]["cpu_per_offer_us"]
                  for r in rounds]
        lo, hi = bootstrap_ci(ratios)
        cpu = {k: median([r[k]["cpu_per_offer_us"] for r in rounds]) for k in ("bare", "exporter")}
        entry: dict[str, Any] = {
            "rounds": len(rounds),
            "cpu_per_offer_us": cpu,
            "cpu_share_at_rate": {k: v * rate / 1e6 for k, v in cpu.items()},
            "cpu_ratio": median(ratios), "cpu_ratio_ci": (lo, hi),
        }
        for lat in ("answer_ms", "running_ms"):
            pooled = {k: [x for r in rounds for x in r[k][lat]] for k in ("bare", "exporter")}
            if not pooled["bare"]:
                continue
            diffs50 = [median(r["exporter"][lat]) - median(r["bare"][lat]) for r in rounds
                       if r["bare"][lat] and r["exporter"][lat]]
            diffs99 = [quantile(r["exporter"][lat], 0.99) - quantile(r["bare"][lat], 0.99)
                       for r in rounds if r["bare"][lat] and r["exporter"][lat]]
            entry[lat] = {
                "p50": {k: median(v) for k, v in pooled.items()},
                "p99": {k: quantile(v, 0.99) for k, v in pooled.items()},
                "n": {k: len(v) for k, v in pooled.items()},
                "p50_diff": median(diffs50), "p50_diff_ci": bootstrap_ci(diffs50),
                "p99_diff": median(diffs99), "p99_diff_ci": bootstrap_ci(diffs99),
            }
        result[phase] = entry
    rss = {}
    for key in ("rss_start", "rss_after_jobs"):
        deltas = [p[key]["exporter"] - p[key]["bare"] for p in pairs if key in p]
        rss[key] = {"bare": median([p[key]["bare"] for p in pairs if key in p]),
                    "exporter": median([p[key]["exporter"] for p in pairs if key in p]),
                    "delta": median(deltas)}
    result["rss"] = rss
    result["jobs_before_rss"] = median([p["offers_per_worker"] for p in pairs])
    return result


async def run_async(quick: bool, log_dir: Path, log: Any) -> dict[str, Any]:
    pairs_n, rounds, sat_rounds, seconds = (1, 3, 2, 3.0) if quick else (2, 6, 5, 5.0)
    mix = JobMix()
    pairs = []
    async with simulator() as sim:
        for p in range(pairs_n):
            log(f"  overhead: process pair {p + 1}/{pairs_n}")
            pairs.append(await run_pair(sim, rounds=rounds, sat_rounds=sat_rounds,
                                        seconds=seconds, seed=p + 1, log_dir=log_dir, log=log))
    summary = summarise(pairs, mix.rate)
    summary["mix"] = {"rate": mix.rate, "job_s": mix.job_s, "reject_share": mix.reject_share,
                      "segment_s": seconds, "pairs": pairs_n}
    return summary


def run(quick: bool, log_dir: Path, log: Any = print) -> dict[str, Any]:
    return asyncio.run(run_async(quick, log_dir, log))
