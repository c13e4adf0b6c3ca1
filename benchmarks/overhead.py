"""Worker overhead: the same worker with and without ``instrument()``, side by side.

Two worker processes run the same code against the same simulator; one calls
``instrument()``. Every offer of the job mix is sent to both at the same moment (the
order of the two sends alternating), so that both see the same work under the same
conditions at the same time: whatever else the machine does hits both alike. Several
such pairs of processes are started one after the other, so that a process that happens
to be faster than its twin does not decide the result. Each segment is measured as:

- worker CPU over the segment plus a settle period in which the segment's jobs end,
  divided by the offers: CPU per job request, and CPU at 100 requests/s as a share of
  one core. The kernel's per-thread run time (``/proc/<pid>/task/*/schedstat``, in
  nanoseconds) when the worker's threads were the same at both ends (the saturated mix),
  else ``psutil`` user+system time (10 ms ticks, but counting threads that ended: job
  threads in the mixed mix);
- dispatch latency, on the simulator side, per offer: offer sent -> answer received,
  and offer sent -> JS_RUNNING received, paired offer by offer between the two workers.

Two job mixes: "mixed" (offers accepted and run as short jobs, a share rejected by the
request handler) and "saturated" (the worker's load_fnc says full, so the SDK refuses
every offer itself: the cheapest path through the SDK, where the hooks weigh most).
Per pair of processes, resident memory is read after registration and after the mixed
segments.

The results are exporter/bare ratios per segment, summarised by their median and a
bootstrap 95% interval over segments, next to the same figures for a control pair of two
bare workers (A/A): what two identical processes differ by on this machine.
"""

from __future__ import annotations

import asyncio
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
from stats import bootstrap_ci

SETTLE_S = 0.8


async def _segment(sim: TimedSimulator, workers: dict[str, WorkerProcess], mix: JobMix,
                   seconds: float, seed: int) -> dict[str, Any]:
    names = list(workers)
    cpu0 = {k: w.cpu_sample() for k, w in workers.items()}
    order = names if seed % 2 == 0 else names[::-1]
    seqs = await drive(sim, [workers[k].worker_id for k in order], mix, seconds, seed)
    await asyncio.sleep(SETTLE_S)
    cpu = {k: cpu0[k].until(w.cpu_sample()) for k, w in workers.items()}
    out: dict[str, Any] = {"offers": len(seqs),
                           "cpu_per_offer_us": {k: c / max(len(seqs), 1) * 1e6
                                                for k, c in cpu.items()}}
    for kind in ("answer", "running"):
        pairs = sim.paired(kind, workers["bare"].worker_id, workers["exporter"].worker_id, seqs)
        out[kind] = [(b * 1e3, e * 1e3) for b, e in pairs]
    return out


async def run_pair(sim: TimedSimulator, *, index: int, rounds: int, sat_rounds: int,
                   seconds: float, log_dir: Path, log: Any,
                   control: bool = False) -> dict[str, Any]:
    """One pair of processes through both mixes; ``control``: two bare workers (A/A)."""
    workers: dict[str, WorkerProcess] = {}
    # the first one started gets the first worker id and some head start: alternate
    for name in (["bare", "exporter"] if index % 2 == 0 else ["exporter", "bare"]):
        workers[name] = await start_worker(sim, instrument=name == "exporter" and not control,
                                           log_dir=log_dir)
    workers = {"bare": workers["bare"], "exporter": workers["exporter"]}
    out: dict[str, Any] = {"segments": {"mixed": [], "saturated": []}}
    mix = JobMix()
    try:
        await asyncio.sleep(1.0)
        out["rss_start"] = {k: w.rss_bytes() for k, w in workers.items()}
        # warm-up: thread pools, first jobs, caches
        await drive(sim, [w.worker_id for w in workers.values()], mix, 2.0, 10_000 + index)
        await asyncio.sleep(SETTLE_S)
        for phase, n in (("mixed", rounds), ("saturated", sat_rounds)):
            if phase == "saturated":
                for w in workers.values():
                    w.toggle_saturation()
                await asyncio.sleep(1.0)  # the next load_fnc sample says full
            for r in range(n):
                seed = index * 1000 + (500 if phase == "saturated" else 0) + r
                seg = await _segment(sim, workers, mix, seconds, seed)
                out["segments"][phase].append(seg)
                cpu = seg["cpu_per_offer_us"]
                log(f"    {phase} segment {r + 1}/{n}: CPU per offer bare {cpu['bare']:.0f} us,"
                    f" exporter {cpu['exporter']:.0f} us")
            if phase == "mixed":
                out["rss_after_jobs"] = {k: w.rss_bytes() for k, w in workers.items()}
                out["offers_per_worker"] = sum(seg["offers"] for seg in out["segments"]["mixed"])
    finally:
        for w in workers.values():
            await stop_worker(sim, w)
    return out


def summarise(pairs: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for phase in ("mixed", "saturated"):
        segs = [seg for pr in pairs for seg in pr["segments"][phase]]
        if not segs:
            continue
        ratios = [seg["cpu_per_offer_us"]["exporter"] / seg["cpu_per_offer_us"]["bare"]
                  for seg in segs]
        per_pair = [median([seg["cpu_per_offer_us"]["exporter"] / seg["cpu_per_offer_us"]["bare"]
                            for seg in pr["segments"][phase]]) for pr in pairs]
        cpu = {k: median([seg["cpu_per_offer_us"][k] for seg in segs])
               for k in ("bare", "exporter")}
        entry: dict[str, Any] = {
            "segments": len(segs),
            "cpu_per_offer_us": cpu,
            "cpu_share_at_rate": {k: v * rate / 1e6 for k, v in cpu.items()},
            "cpu_ratio": median(ratios), "cpu_ratio_ci": bootstrap_ci(ratios),
            "cpu_ratio_per_pair": per_pair,
        }
        for kind in ("answer", "running"):
            pooled = [p for seg in segs for p in seg[kind]]
            if not pooled:
                continue
            seg_diffs = [median([e - b for b, e in seg[kind]]) for seg in segs if seg[kind]]
            entry[f"{kind}_ms"] = {
                "n": len(pooled),
                "p50": {"bare": median([b for b, _ in pooled]),
                        "exporter": median([e for _, e in pooled])},
                "p99": {"bare": quantile([b for b, _ in pooled], 0.99),
                        "exporter": quantile([e for _, e in pooled], 0.99)},
                "p50_diff": median(seg_diffs), "p50_diff_ci": bootstrap_ci(seg_diffs),
            }
        result[phase] = entry
    rss = {}
    for key in ("rss_start", "rss_after_jobs"):
        have = [p for p in pairs if key in p]
        rss[key] = {"bare": median([p[key]["bare"] for p in have]),
                    "exporter": median([p[key]["exporter"] for p in have]),
                    "delta": median([p[key]["exporter"] - p[key]["bare"] for p in have])}
    result["rss"] = rss
    result["jobs_before_rss"] = median([p["offers_per_worker"] for p in pairs])
    return result


async def run_async(quick: bool, log_dir: Path, log: Any,
                    segments: int | None = None) -> dict[str, Any]:
    pairs_n, rounds, sat_rounds, seconds = (1, 4, 3, 3.0) if quick else (5, 6, 5, 4.0)
    if segments:  # run.py --rounds overhead=N: segments per process pair, both mixes
        rounds = sat_rounds = segments
    mix = JobMix()
    pairs = []
    async with simulator() as sim:
        for p in range(pairs_n):
            log(f"  overhead: process pair {p + 1}/{pairs_n}")
            pairs.append(await run_pair(sim, index=p, rounds=rounds, sat_rounds=sat_rounds,
                                        seconds=seconds, log_dir=log_dir, log=log))
        # A/A control: two bare workers measured the same way, so that the exporter's
        # figures can be read against what two identical processes already differ by
        log("  overhead: control pair (two bare workers)")
        control = await run_pair(sim, index=pairs_n, rounds=rounds, sat_rounds=sat_rounds,
                                 seconds=seconds, log_dir=log_dir, log=log, control=True)
    summary = summarise(pairs, mix.rate)
    summary["control"] = summarise([control], mix.rate)
    summary["mix"] = {"rate": mix.rate, "job_s": mix.job_s, "reject_share": mix.reject_share,
                      "segment_s": seconds, "pairs": pairs_n}
    return summary


def run(quick: bool, log_dir: Path, log: Any = print,
        segments: int | None = None) -> dict[str, Any]:
    return asyncio.run(run_async(quick, log_dir, log, segments))
