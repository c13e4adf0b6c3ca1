"""The results page (``latest.md``) and the rule evaluation plot (``rule_eval.png``)."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rules_scale import EVAL_INTERVAL_S
from stats import Verdict, equivalence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# the budgets of the exporter's cost (equivalence tests: see stats.py)
CPU_RATIO_BUDGET = 1.05  # worker CPU at 100 offers/s: < +5%
LAG_P99_BUDGET_MS = 1.0  # event-loop lag p99 added by 10 scrapes/s: < 1 ms
SCRAPE_CPU_BUDGET_PCT = 0.1  # scrape CPU at a 15 s scrape interval: < 0.1% of a core
# dispatch latency p50 added: the loop-lag budget, applied to the offer's own path
LATENCY_BUDGET_MS = 1.0
SCRAPE_INTERVAL_S = 15.0
README_TABLE_BEGIN = ("<!-- performance-table:begin (generated from benchmarks/results/"
                      "latest.json by `make generate`) -->")
README_TABLE_END = "<!-- performance-table:end -->"


def versions() -> dict[str, str]:
    def dist(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    from livekit_agents_exporter.version import __version__

    out = {"livekit-agents": dist("livekit-agents"), "prometheus-client": dist("prometheus-client"),
           "exporter": __version__}
    try:
        text = subprocess.run(["prometheus", "--version"], capture_output=True, text=True,
                              timeout=10).stdout.split("\n")[0]
        out["prometheus"] = text.split("version ", 1)[-1].split(" ")[0]
    except (OSError, subprocess.SubprocessError):
        out["prometheus"] = "not found"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "exporter"], cwd=HERE.parent,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        out["commit"] = commit + ("+local changes" if dirty else "") if commit else "unknown"
    except (OSError, subprocess.SubprocessError):
        out["commit"] = "unknown"
    return out


# --- formatting helpers ---------------------------------------------------------------

def _ms(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f} ms"


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def _ci_pct(ci: Sequence[float]) -> str:
    lo, hi = ci
    return f"{(lo - 1) * 100:+.1f}% .. {(hi - 1) * 100:+.1f}%"


def _ci_ms(ci: Sequence[float]) -> str:
    lo, hi = ci
    return f"{lo:+.3f} .. {hi:+.3f} ms"


def _mib(b: float) -> str:
    return f"{b / 2**20:.1f} MiB"


def _status(ok: bool) -> str:
    return "met" if ok else "not met"


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


# --- the page --------------------------------------------------------------------------

def markdown(r: dict[str, Any]) -> str:
    m, v = r["machine"], r["versions"]
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{r['command']}` ({'quick run' if r['quick'] else 'full run'}, "
        f"{r['total_s'] / 60:.1f} min). Page rendered "
        f"{dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']}, "
        f"Python {m['python']}.  ",
        f"Software: livekit-agents {v['livekit-agents']}, prometheus-client "
        f"{v['prometheus-client']}, Prometheus {v['prometheus']}, exporter {v['exporter']} "
        f"(commit {v['commit']}).",
        "",
        "Every figure compares two things measured in the same run, interleaved: the worker "
        "with `instrument()` against the same worker without it, the exporter's endpoint "
        "against the SDK's own, scrapes against no scrapes. How each is measured: "
        "[benchmarks/README.md](../README.md). A figure meets its budget only when its whole "
        "95% interval lies inside it, misses it only when the whole interval lies outside, "
        "and is inconclusive otherwise; the sizing table says how many rounds would decide.",
        "",
        "## Summary",
        "",
        _row("Question", "Result", "Target", "Status"),
        _row("---", "---", "---", "---"),
    ]
    summary = _summary_rows(r)
    lines += summary if summary else ["| (no suite with a target ran) | - | - | - |"]
    if figures(r):
        lines += ["", "## Sizing", "", *sizing_table(r)]
    for title, fn, key in (("Worker overhead", _overhead, "overhead"),
                           ("Micro benchmarks", _micro, "micro"),
                           ("Event-loop lag under scrapes", _lag, "lag"),
                           ("Scrape cost: exporter vs the SDK's endpoint", _scrape, "scrape"),
                           ("Rule cost at scale", _rules, "rules")):
        if key in r:
            lines += ["", f"## {title}", ""] + fn(r[key])
    for what, why in r.get("skipped", {}).items():
        lines += ["", f"Skipped {what}: {why}."]
    lines += ["", "Suite durations: " + ", ".join(
        f"{k} {s:.0f}s" for k, s in r["durations_s"].items()) + ".", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class Figure:
    """A figure with a budget: what it is, its estimate and interval, and its verdict."""

    question: str
    result: str  # the estimate and its interval, formatted
    budget: str
    verdict: Verdict
    round_name: str  # what one round of this figure is (segments, rounds, pairs)
    unit: str  # the unit of the half-width
    suite: str  # the suite that measures it, sized by run.py --rounds SUITE=N
    per_count: int = 1  # rounds per unit of N (overhead: N is per process pair)

    def rerun(self) -> str:
        """The run.py arguments that would decide an inconclusive figure, else ``-``."""
        total = self.verdict.rounds_to_decide
        if self.verdict.status != "inconclusive" or total is None:
            return "-"
        count = math.ceil(total / self.per_count)
        return f"`--only {self.suite} --rounds {self.suite}={count} --merge`"

    @property
    def status(self) -> str:
        return self.verdict.text(self.round_name)


def figures(r: dict[str, Any]) -> list[Figure]:
    """Every budgeted figure of a results file, with its equivalence verdict."""
    out: list[Figure] = []
    if "overhead" in r:
        o = r["overhead"]
        rate = o["mix"]["rate"]
        for phase, label in (("mixed", f"Worker CPU at {rate:g} job offers/s"),
                             ("saturated", f"Worker CPU at {rate:g} offers/s all refused as "
                                           "full (worst case)")):
            if phase not in o:
                continue
            p = o[phase]
            ci = p["cpu_ratio_ci"]
            v = equivalence(p["cpu_ratio"], ci, CPU_RATIO_BUDGET, p["segments"])
            out.append(Figure(label, f"{_pct(p['cpu_ratio'])} (95% CI {_ci_pct(ci)})",
                              f"< +{(CPU_RATIO_BUDGET - 1) * 100:g}%",
                              Verdict(v.status, v.half_width * 100, v.rounds, v.rounds_to_decide),
                              "segments", "percentage points", "overhead", o["mix"]["pairs"]))
        for phase, key, label in (("mixed", "answer_ms", "offer -> answer"),
                                  ("mixed", "running_ms", "offer -> job running"),
                                  ("saturated", "answer_ms", "offer -> refusal (saturated)")):
            lat = o.get(phase, {}).get(key)
            if not lat:
                continue
            v = equivalence(lat["p50_diff"], lat["p50_diff_ci"], LATENCY_BUDGET_MS,
                            o[phase]["segments"])
            out.append(Figure(f"Dispatch latency p50 added, {label}, paired per offer",
                              f"{lat['p50_diff']:+.3f} ms (95% CI {_ci_ms(lat['p50_diff_ci'])})",
                              f"< +{LATENCY_BUDGET_MS:g} ms", v, "segments", "ms", "overhead",
                              o["mix"]["pairs"]))
    if "lag" in r:
        added = r["lag"]["exporter_added"]
        est = added["p99_paired"]
        ci = added.get("p99_paired_ci", (est, est))
        out.append(Figure("Event-loop lag p99 added by 10 scrapes/s",
                          f"{est:+.3f} ms (95% CI {_ci_ms(ci)})", f"< {LAG_P99_BUDGET_MS:g} ms",
                          equivalence(est, ci, LAG_P99_BUDGET_MS, r["lag"]["rounds"]),
                          "rounds", "ms", "lag"))
    if "scrape" in r and "cpu" in r["scrape"]:
        c = r["scrape"]["cpu"]
        to_share = 100 / (SCRAPE_INTERVAL_S * 1e3)  # ms per scrape -> % of a core
        est = c["total"]["ms_per_scrape"] * to_share
        ci = [x * to_share for x in c["total"]["ms_per_scrape_ci"]]
        out.append(Figure(f"Scrape CPU at {SCRAPE_INTERVAL_S:g} s scrapes (worker + endpoint "
                          "process)",
                          f"{est:.4f}% of a core (95% CI {ci[0]:.4f} .. {ci[1]:.4f}%)",
                          f"< {SCRAPE_CPU_BUDGET_PCT:g}% of a core",
                          equivalence(est, ci, SCRAPE_CPU_BUDGET_PCT, c["pairs"]),
                          "pairs", "% of a core", "scrape"))
    return out


def sizing_table(r: dict[str, Any]) -> list[str]:
    """Per budgeted figure: the rounds run, the interval's half-width, the rounds to decide."""
    lines = [_row("Figure", "rounds run", "95% CI half-width", "verdict", "rounds to decide",
                  "rerun with"),
             _row("---", "---", "---", "---", "---", "---")]
    for f in figures(r):
        v = f.verdict
        decide = ("decided" if v.status != "inconclusive" else
                  f"about {v.rounds_to_decide} ({v.more_rounds} more)" if v.more_rounds
                  else "cannot decide (the estimate sits on the budget)")
        lines.append(_row(f.question, f"{v.rounds} {f.round_name}",
                          f"{v.half_width:.3g} {f.unit}", v.status, decide, f.rerun()))
    lines += ["", "Rounds to decide: the interval's side facing the budget shrinks as "
                  "1/sqrt(rounds) at the spread observed, an estimate (a noisier machine needs "
                  "more). `python benchmarks/run.py --rounds overhead=N,lag=N,scrape=N` sizes "
                  "the suites (overhead: segments per process pair, of each mix)."]
    return lines


def _summary_rows(r: dict[str, Any]) -> list[str]:
    rows = [_row(f.question, f.result, f.budget, f.status) for f in figures(r)]
    if "overhead" in r:
        o = r["overhead"]
        mixed = o["mixed"]
        share = mixed["cpu_share_at_rate"]
        rows.append(_row("Worker CPU share at the mix's rate, bare -> exporter",
                         f"{share['bare'] * 100:.0f}% -> {share['exporter'] * 100:.0f}% of a "
                         "core", "reported", "-"))
        rss = o["rss"]["rss_after_jobs"]
        rows.append(_row(f"Resident memory added (after {o['jobs_before_rss']:.0f} job requests)",
                         f"{rss['delta'] / 2**20:+.1f} MiB ({_mib(rss['bare'])} -> "
                         f"{_mib(rss['exporter'])})", "reported", "-"))
    if "scrape" in r:
        s = r["scrape"]
        rows.append(_row("Scrape latency p50, exporter vs SDK endpoint",
                         f"{_ms(s['exporter']['p50_ms'], 3)} vs {_ms(s['sdk']['p50_ms'], 3)} "
                         f"(x{s['latency_ratio_paired']:.2f} paired)",
                         "no slower (<= x1.00)", _status(s["latency_ratio_paired"] <= 1.0)))
        rows.append(_row("Series, exporter vs SDK endpoint",
                         f"{s['exporter']['series']['own']} vs {s['sdk']['series']['own']} own "
                         f"(x{s['own_series_ratio']:.1f}); {s['exporter']['series']['total']} vs "
                         f"{s['sdk']['series']['total']} with runtime collectors "
                         f"(x{s['total_series_ratio']:.1f})", ">= x5 own series",
                         _status(s["own_series_ratio"] >= 5)))
    if "rules" in r:
        ru = r["rules"]
        spw = ru["series_per_worker"]
        rows.append(_row("Series per worker", f"{spw['total']} ({spw['exporter']} exporter, "
                         f"{spw['runtime']} Python runtime); every label value fixed, "
                         "all series present from the start", "bounded, documented", "met"))
        big = max(ru["fleets"], key=lambda f: f["workers"])
        slowest = _slowest_group(big["groups"])
        rows.append(_row(
            f"Rule evaluation, {big['workers']:,} workers",
            f"slowest group {slowest[1]:.2f} s (`{slowest[0]}`, median); all groups "
            f"{big['total_median_s']:.2f} s added up (max "
            f"{sum(g['max_s'] for g in big['groups'].values()):.2f} s)",
            f"each group well inside {EVAL_INTERVAL_S:g} s (< half)",
            rule_verdict(big["groups"], EVAL_INTERVAL_S / 2)))
    return rows


def readme_table(r: dict[str, Any]) -> str:
    """The README's performance table: each budgeted figure, its budget and its verdict."""
    m, v = r["machine"], r["versions"]
    lines = [f"Last {'quick' if r['quick'] else 'full'} run: {m['cpu']}, {m['cores']} cores, "
             f"{m['memory']}, livekit-agents {v['livekit-agents']}, Prometheus "
             f"{v['prometheus']}.", "",
             _row("figure", "result", "budget", "verdict"), _row("---", "---", "---", "---")]
    lines += [_row(f.question, f.result, f.budget, f.status) for f in figures(r)]
    if "scrape" in r:
        s = r["scrape"]
        lines.append(_row("Scrape latency p50, exporter vs the SDK's own endpoint",
                          f"{_ms(s['exporter']['p50_ms'], 1)} vs {_ms(s['sdk']['p50_ms'], 1)} "
                          f"(x{s['latency_ratio_paired']:.1f} paired)", "reported",
                          "the snapshot crosses to the endpoint process"))
    if "overhead" in r:
        o = r["overhead"]
        lines.append(_row(f"Resident memory added after {o['jobs_before_rss']:,.0f} offers",
                          f"{o['rss']['rss_after_jobs']['delta'] / 2**20:+.1f} MiB in the worker, "
                          "plus the endpoint process", "reported",
                          f"bounded ({r['micro']['memory']['max_tracked_jobs']:,} jobs kept)"
                          if "micro" in r else "-"))
    if "rules" in r:
        spw = r["rules"]["series_per_worker"]
        lines.append(_row("Series per worker", f"{spw['total']} ({spw['exporter']} exporter, "
                          f"{spw['runtime']} runtime)", "bounded", "every label value fixed"))
        big = max(r["rules"]["fleets"], key=lambda f: f["workers"])
        slowest = _slowest_group(big["groups"])
        lines.append(_row(f"Rule evaluation, {big['workers']:,} workers (median, slowest group)",
                          f"{slowest[1]:.2f} s (all groups {big['total_median_s']:.2f} s)",
                          f"< {EVAL_INTERVAL_S / 2:g} s per group (half the interval)",
                          rule_verdict(big["groups"], EVAL_INTERVAL_S / 2)))
    return "\n".join(lines)


def replace_readme_table(text: str, table: str) -> str:
    """``text`` (the README) with the performance table between its markers replaced."""
    if README_TABLE_BEGIN not in text or README_TABLE_END not in text:
        raise ValueError("README.md lost its performance-table markers")
    head, rest = text.split(README_TABLE_BEGIN, 1)
    _, tail = rest.split(README_TABLE_END, 1)
    return f"{head}{README_TABLE_BEGIN}\n{table}\n{README_TABLE_END}{tail}"


def _overhead(o: dict[str, Any]) -> list[str]:
    mix = o["mix"]
    lines = [
        f"Job mix: {mix['rate']:g} offers/s (Poisson), {1 - mix['reject_share']:.0%} accepted "
        f"and run for {mix['job_s']:g} s (thread executor), {mix['reject_share']:.0%} rejected "
        f"by the request handler. \"Saturated\": the worker's load_fnc reports 1.0, so the SDK "
        f"refuses every offer itself. Each offer goes to both workers at the same moment; "
        f"{mix['pairs']} pair(s) of worker processes, {mix['segment_s']:g} s segments.",
        "",
        _row("Mix", "Segments", "CPU per offer, bare", "CPU per offer, exporter",
             "Ratio (median of segments)", "95% CI", "Ratio per process pair"),
        _row("---", "---", "---", "---", "---", "---", "---"),
    ]
    for phase in ("mixed", "saturated"):
        if phase not in o:
            continue
        p = o[phase]
        lines.append(_row(phase, p["segments"], f"{p['cpu_per_offer_us']['bare']:.0f} us",
                          f"{p['cpu_per_offer_us']['exporter']:.0f} us",
                          f"x{p['cpu_ratio']:.3f}",
                          f"x{p['cpu_ratio_ci'][0]:.3f} .. x{p['cpu_ratio_ci'][1]:.3f}",
                          ", ".join(f"x{r:.3f}" for r in p["cpu_ratio_per_pair"])))
        c = o.get("control", {}).get(phase)
        if c:
            lines.append(_row(f"{phase}, A/A control", c["segments"],
                              f"{c['cpu_per_offer_us']['bare']:.0f} us",
                              f"{c['cpu_per_offer_us']['exporter']:.0f} us (bare too)",
                              f"x{c['cpu_ratio']:.3f}",
                              f"x{c['cpu_ratio_ci'][0]:.3f} .. x{c['cpu_ratio_ci'][1]:.3f}", "-"))
    lines += ["", "Dispatch latency, measured by the simulator, the same offers paired between "
                  "the two workers (the two workers and the simulator share the machine's cores, "
                  "so absolute values include that contention):", "",
              _row("Mix", "Latency", "offers", "p50 bare", "p50 exporter",
                   "paired diff (median of segments, 95% CI)", "p99 bare", "p99 exporter"),
              _row("---", "---", "---", "---", "---", "---", "---", "---")]
    for phase in ("mixed", "saturated"):
        for key, label in (("answer_ms", "offer -> answer"), ("running_ms", "offer -> JS_RUNNING")):
            lat = o.get(phase, {}).get(key)
            if not lat:
                continue
            lines.append(_row(phase, label, lat["n"], _ms(lat["p50"]["bare"], 3),
                              _ms(lat["p50"]["exporter"], 3),
                              f"{lat['p50_diff']:+.3f} ms ({_ci_ms(lat['p50_diff_ci'])})",
                              _ms(lat["p99"]["bare"]), _ms(lat["p99"]["exporter"])))
            c = o.get("control", {}).get(phase, {}).get(key)
            if c:
                lines.append(_row(f"{phase}, A/A control", label, c["n"],
                                  _ms(c["p50"]["bare"], 3), _ms(c["p50"]["exporter"], 3),
                                  f"{c['p50_diff']:+.3f} ms ({_ci_ms(c['p50_diff_ci'])})",
                                  _ms(c["p99"]["bare"]), _ms(c["p99"]["exporter"])))
    rss = o["rss"]
    lines += ["", _row("Resident memory (median of pairs)", "bare", "exporter", "added"),
              _row("---", "---", "---", "---")]
    for key, label in (("rss_start", "after registration"),
                       ("rss_after_jobs", f"after {o['jobs_before_rss']:.0f} job requests")):
        lines.append(_row(label, _mib(rss[key]["bare"]), _mib(rss[key]["exporter"]),
                          f"{rss[key]['delta'] / 2**20:+.2f} MiB"))
    return lines


def _micro(mi: dict[str, Any]) -> list[str]:
    load = mi["load_fnc"]
    lines = [f"Median of {mi['repeats']} rounds; bare and hooked run back to back in each round.",
             "", _row("load_fnc", "bare", "wrapped", "added per call", "ratio"),
             _row("---", "---", "---", "---", "---")]
    for key, val in load.items():
        if isinstance(val, dict) and key not in ("sdk_call_path", "signature_ns"):
            lines.append(_row(key, f"{val['bare_ns']:.0f} ns", f"{val['hooked_ns']:.0f} ns",
                              f"{val['extra_ns']:.0f} ns", f"x{val['ratio']:.1f}"))
    sig = load.get("signature_ns")
    if sig:
        lines += ["", "The SDK runs `inspect.signature(load_fnc)` on every call; what that costs: "
                  + ", ".join(f"{label} {ns / 1000:.1f} us" for label, ns in sig.items())
                  + ". The wrapper carries a ready `__signature__`, returned without walking "
                    "the function."]
    sdk = load.get("sdk_call_path")
    if sdk:
        lines += ["", f"Called the SDK's way (`AgentServer._invoke_load_fnc`: signature inspection "
                      f"and executor hop) a plain function costs {sdk['bare_ns'] / 1000:.1f} us "
                      f"bare and {sdk['hooked_ns'] / 1000:.1f} us wrapped (paired by round: "
                      f"{sdk['extra_ns'] / 1000:+.1f} us); the executor hop dominates."]
    rec = mi["recorder"]
    lines += ["", f"Recorder methods (per-job dictionaries at their bound); one bare "
                  f"`Counter.inc()` costs {rec['bare_counter_inc_ns']:.0f} ns. A hook only "
                  "queues the event on the worker's path; the metric updates are applied "
                  "later, before a scrape or on the exporter's drain thread:", "",
              _row("Method", "hook call (worker's path)", "x bare inc()", "applied later"),
              _row("---", "---", "---", "---")]
    for name, val in rec["methods"].items():
        applied = f"{val['applied_ns']:.0f} ns" if "applied_ns" in val else "-"
        lines.append(_row(f"`{name}`", f"{val['ns']:.0f} ns", f"x{val['x_bare_inc']:.1f}",
                          applied))
    hooks = mi["hooks"]
    lines += ["", "Every hook one offer goes through (wire taps, request-handler and load_fnc "
                  "wrappers), on a stub worker, minus the same calls untapped:", "",
              _row("Offer", "untapped", "tapped", "added on the worker's path",
                   "applied later (drain)"),
              _row("---", "---", "---", "---", "---")]
    for name, val in hooks.items():
        applied = f"{val['applied_ns'] / 1000:.1f} us" if "applied_ns" in val else "-"
        lines.append(_row(name, f"{val['bare_ns'] / 1000:.1f} us",
                          f"{val['hooked_ns'] / 1000:.1f} us", f"{val['extra_ns'] / 1000:.1f} us",
                          applied))
    mem = mi["memory"]
    lines += ["", f"Memory (tracemalloc): metric families and series "
                  f"{mem['metrics_and_series_bytes'] / 1024:.0f} KiB; per-job bookkeeping "
                  f"{mem['bookkeeping_at_bound_bytes'] / 2**20:.2f} MiB at its bound of "
                  f"{mem['max_tracked_jobs']:,} jobs and "
                  f"{mem['bookkeeping_after_2x_bound_bytes'] / 2**20:.2f} MiB after twice as "
                  "many (bounded)."]
    return lines


def _lag(lag: dict[str, Any]) -> list[str]:
    lines = [f"Probe: a task in the worker's loop sleeps 5 ms and records how late it wakes. "
             f"{lag['rounds']} rounds of three {lag['phase_s']:g} s phases (order rotating), "
             f"{lag['traffic_rate']:g} offers/s throughout, scrapes at {lag['scrape_hz']:g} Hz "
             f"with Prometheus' Accept header.", "",
             _row("Phase", "samples", "p50", "p99", "p99.9", "max"),
             _row("---", "---", "---", "---", "---", "---")]
    for cond, label in (("none", "no scrapes"), ("exporter", "exporter scraped"),
                        ("sdk", "SDK endpoint scraped")):
        s = lag[cond]
        lines.append(_row(label, s["n"], _ms(s["p50"], 3), _ms(s["p99"], 3), _ms(s["p999"], 3),
                          _ms(s["max"], 1)))
    for cond in ("exporter", "sdk"):
        a = lag[f"{cond}_added"]
        lines.append("")
        lines.append(f"Added by scraping the {cond} endpoint: p99 {a['p99_paired']:+.3f} ms "
                     f"(paired by round, 95% CI {_ci_ms(a['p99_paired_ci'])}), p50 "
                     f"{a['p50_paired']:+.3f} ms.")
    return lines


def _scrape(s: dict[str, Any]) -> list[str]:
    lines = [f"{s['rounds']} scrapes of each, alternating, keep-alive, each endpoint about 5 "
             "times a second, on one idle worker (process executor) serving both endpoints.",
             *([f"CPU per scrape ({s['cpu']['pairs']} pairs of {s['cpu']['segment_s']:g} s "
                f"segments, scraped at {s['cpu']['hz']:g} Hz against idle): worker "
                f"{s['cpu']['worker']['ms_per_scrape']:.2f} ms (95% CI "
                f"{s['cpu']['worker']['ms_per_scrape_ci'][0]:.2f} .. "
                f"{s['cpu']['worker']['ms_per_scrape_ci'][1]:.2f}), endpoint process "
                f"{s['cpu']['endpoint']['ms_per_scrape']:.2f} ms (95% CI "
                f"{s['cpu']['endpoint']['ms_per_scrape_ci'][0]:.2f} .. "
                f"{s['cpu']['endpoint']['ms_per_scrape_ci'][1]:.2f})."] if "cpu" in s else []),
             "",
             _row("Endpoint", "Format", "p50", "p99", "bytes", "series (own / total)"),
             _row("---", "---", "---", "---", "---", "---")]
    for key, label in (("exporter", "exporter, Prometheus Accept"),
                       ("exporter_text", "exporter, text/plain"),
                       ("sdk", "SDK prometheus_port")):
        e = s[key]
        lines.append(_row(label, e["content_type"], _ms(e["p50_ms"], 3), _ms(e["p99_ms"], 3),
                          f"{e['bytes']:,}", f"{e['series']['own']} / {e['series']['total']}"))
    return lines


def _rules(ru: dict[str, Any]) -> list[str]:
    spw = ru["series_per_worker"]
    history = max(f.get("history_s", 300.0) for f in ru["fleets"])
    dense = min((f.get("dense_history_s", history) for f in ru["fleets"]), default=history)
    long_names = sorted({n for f in ru["fleets"] for n in f.get("long_range_series", [])})
    older = (f" (beyond {dense / 60:g} minutes, only {', '.join(f'`{n}`' for n in long_names)}, "
             f"the series read over the longer range)" if long_names else "")
    lines = [f"Bundled rules (`alerts/livekit-agents.rules.yaml`), {ru['agent_names']} agent "
             f"names, every sample of a real worker's exposition per simulated worker "
             f"({spw['total']} series, counters growing at that worker's rates), "
             f"{history / 60:g} minutes of history at 15 s resolution{older}: a full window "
             f"for every range the rules read from workers' series. Evaluation every "
             f"{ru['eval_interval_s']:g} s, ingestion paused while measuring; the groups "
             "run concurrently, the total adds them up; the group columns show the slowest "
             "recording group and the slowest alerting group (the budget is per group); "
             "Prometheus CPU is its CPU time over the measurement, in cores. "
             "Plot: [rule_eval.png](rule_eval.png).", "",
             _row("Workers", "head series", "recording group", "alerting group",
                  "total (median)", "max", "Prometheus CPU", "Prometheus RSS",
                  f"samples per {dense / 60:g}m window", "alerts firing / pending"),
             _row("---", "---", "---", "---", "---", "---", "---", "---", "---", "---")]
    for f in ru["fleets"]:
        groups = f["groups"]
        rec = _slowest(groups, ".rules")
        alert = _slowest(groups, ".alerts")
        lines.append(_row(
            f"{f['workers']:,}", f"{f['head_series']:,.0f}" if f["head_series"] else "n/a",
            f"{rec.get('median_s', math.nan):.3f} s", f"{alert.get('median_s', math.nan):.3f} s",
            f"{f['total_median_s']:.3f} s",
            f"{sum(g['max_s'] for g in groups.values()):.3f} s",
            _cores(f),
            _mib(f["prometheus_rss_bytes"]) if f["prometheus_rss_bytes"] else "n/a",
            f"{f['checks']['samples_in_window']:.0f}",
            f"{f['checks'].get('alerts_firing', math.nan):.0f} / "
            f"{f['checks'].get('alerts_pending', math.nan):.0f}"))
    if ru.get("baseline_v1"):
        lines += ["", "Alert pack v1 (`benchmarks/rules_v1.yaml`, the pack before v2) on the "
                  "same fleets in the same run:", "",
                  _row("Workers", "v1 total (median)", "shipped total (median)", "shipped / v1",
                       "v1 CPU", "shipped CPU"),
                  _row("---", "---", "---", "---", "---", "---")]
        for f, b, r in zip(ru["fleets"], ru["baseline_v1"], ru["shipped_over_v1"],
                           strict=True):
            lines.append(_row(f"{f['workers']:,}", f"{b['total_median_s']:.3f} s",
                              f"{f['total_median_s']:.3f} s", f"x{r['shipped_over_v1']:.2f}",
                              _cores(b), _cores(f)))
    big = max(ru["fleets"], key=lambda f: f["workers"])
    if big.get("top_rules"):
        lines += ["", f"Most expensive rules at {big['workers']:,} workers: " + "; ".join(
            f"`{name.split('/', 2)[2]}` {t:.3f} s" for t, name in big["top_rules"]) + "."]
    return lines


def _cores(fleet: dict[str, Any]) -> str:
    return (f"{fleet['prometheus_cpu_cores']:.2f} cores" if "prometheus_cpu_cores" in fleet
            else "n/a")


def rule_verdict(groups: dict[str, Any], budget: float) -> str:
    """Met only when every group's slowest evaluation stayed under the budget, not met when
    a group's median is over it, inconclusive between (the runs give no interval)."""
    if all(g["max_s"] < budget for g in groups.values()):
        return "met"
    worst = max(groups, key=lambda n: groups[n]["max_s"])
    if any(g["median_s"] >= budget for g in groups.values()):
        return "not met"
    return (f"inconclusive: `{worst}`'s slowest evaluation took "
            f"{groups[worst]['max_s']:.2f} s")


def _slowest_group(groups: dict[str, Any]) -> tuple[str, float]:
    """(name, median seconds) of the group that takes longest: groups evaluate concurrently,
    each within its own interval, so the budget is per group."""
    name = max(groups, key=lambda n: groups[n]["median_s"])
    return name, groups[name]["median_s"]


def _slowest(groups: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The group named ``*suffix`` with the largest median evaluation time."""
    named = [g for name, g in groups.items() if name.endswith(suffix)]
    return max(named, key=lambda g: g["median_s"], default={})


# --- the plot -------------------------------------------------------------------------------

def plot_rules(ru: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fleets = sorted(ru["fleets"], key=lambda f: f["workers"])
    xs = [f["workers"] for f in fleets]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    series = {"slowest recording group": ".rules", "slowest alerting group": ".alerts"}
    for label, suffix in series.items():
        ys = [_slowest(f["groups"], suffix).get("median_s", float("nan")) for f in fleets]
        ax.plot(xs, ys, marker="o", label=label)
    totals = [f["total_median_s"] for f in fleets]
    ax.plot(xs, totals, marker="s", linewidth=2, color="black", label="total")
    for x, y in zip(xs, totals, strict=True):
        ax.annotate(f"{y:.2f} s", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.axhline(EVAL_INTERVAL_S, color="red", linestyle="--",
               label=f"evaluation interval {EVAL_INTERVAL_S:g} s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"workers (over {ru['agent_names']} agent names, "
                  f"{ru['series_per_worker']['total']} series each)")
    ax.set_ylabel("evaluation time per interval (s, median)")
    ax.set_title("Bundled rules in Prometheus: evaluation time vs fleet size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --- writing ---------------------------------------------------------------------------------

def sizing_summary(r: dict[str, Any]) -> list[str]:
    """One line per budgeted figure, for the terminal: verdict, half-width, rounds to decide."""
    return [f"{f.question}: {f.result}, budget {f.budget}: {f.status} (95% CI half-width "
            f"{f.verdict.half_width:.3g} {f.unit}, {f.verdict.rounds} {f.round_name})"
            for f in figures(r)]


def update_readme(r: dict[str, Any], readme: Path = REPO / "README.md") -> Path:
    readme.write_text(replace_readme_table(readme.read_text(), readme_table(r)))
    return readme


def write_reports(r: dict[str, Any], out: Path, *, plot: bool = True) -> list[Path]:
    """latest.md, rule_eval.png (when the rule suite ran) and the README table from ``r``."""
    written = [out / "latest.md"]
    written[0].write_text(markdown(r))
    if plot and "rules" in r:
        plot_rules(r["rules"], out / "rule_eval.png")
        written.append(out / "rule_eval.png")
    if out.resolve() == (HERE / "results").resolve():  # the published results only
        written.append(update_readme(r))
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="rewrite the benchmark reports from latest.json")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--report-only", action="store_true",
                      help="rewrite latest.md, rule_eval.png and the README's performance "
                           "table from latest.json, measure nothing")
    mode.add_argument("--readme-only", action="store_true",
                      help="rewrite only the README's performance table (what make generate "
                           "does)")
    p.add_argument("--results", type=Path, default=HERE / "results" / "latest.json")
    args = p.parse_args(argv)
    try:
        results = json.loads(args.results.read_text())
    except (OSError, ValueError) as e:
        print(f"cannot read {args.results}: {e}", file=sys.stderr)
        return 2
    try:
        replace_readme_table((REPO / "README.md").read_text(), "")
    except ValueError as e:
        print(f"cannot update README.md: {e}", file=sys.stderr)
        return 2
    if args.readme_only:
        update_readme(results)
        print("regenerated README performance table")
        return 0
    can_plot = importlib.util.find_spec("matplotlib") is not None
    if not can_plot and "rules" in results:
        print("skipping rule_eval.png: matplotlib is not installed (pip install matplotlib)",
              file=sys.stderr)
    for path in write_reports(results, args.results.parent, plot=can_plot):
        print(f"regenerated {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    for line in sizing_summary(results):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
