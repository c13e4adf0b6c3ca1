"""The results page (``latest.md``) and the rule evaluation plot (``rule_eval.png``)."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EVAL_INTERVAL_TARGET_S = 15.0


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


def _ci_pct(ci: Any) -> str:
    lo, hi = ci
    return f"{(lo - 1) * 100:+.1f}% .. {(hi - 1) * 100:+.1f}%"


def _ci_ms(ci: Any) -> str:
    lo, hi = ci
    return f"{lo:+.3f} .. {hi:+.3f} ms"


def _mib(b: float) -> str:
    return f"{b / 2**20:.1f} MiB"


def _within(ci: Any, budget: float) -> str:
    """An equivalence test: met only when the whole confidence interval is inside the budget."""
    lo, hi = ci
    if hi < budget:
        return "met"
    if lo >= budget:
        return "not met"
    return "inconclusive (the interval straddles the budget)"


def _status(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


# --- the page --------------------------------------------------------------------------

def markdown(r: dict[str, Any]) -> str:
    m, v = r["machine"], r["versions"]
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{r['command']}` ({'quick run' if r['quick'] else 'full run'}, "
        f"{r['total_s'] / 60:.1f} min). Generated "
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
        "[README.md](README.md).",
        "",
        "## Summary",
        "",
        _row("Question", "Result", "Target", "Status"),
        _row("---", "---", "---", "---"),
    ]
    lines += _summary_rows(r)
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


def _summary_rows(r: dict[str, Any]) -> list[str]:
    rows = []
    if "overhead" in r:
        o = r["overhead"]
        mixed = o["mixed"]
        rate = o["mix"]["rate"]
        rows.append(_row(
            f"Worker CPU at {rate:g} job requests/s",
            f"{_pct(mixed['cpu_ratio'])} (95% CI {_ci_pct(mixed['cpu_ratio_ci'])}); "
            f"{mixed['cpu_share_at_rate']['bare'] * 100:.0f}% -> "
            f"{mixed['cpu_share_at_rate']['exporter'] * 100:.0f}% of a core",
            "< +5%", _status(mixed["cpu_ratio"] < 1.05)))
        if "saturated" in o:
            sat = o["saturated"]
            # from the ratio, so that the two figures agree (the medians of each side's CPU
            # come from different segments)
            extra_us = (sat["cpu_ratio"] - 1) * sat["cpu_per_offer_us"]["bare"]
            rows.append(_row(
                f"Worker CPU at {rate:g} offers/s all refused as full (worst case: the SDK's "
                "cheapest path)",
                f"{_pct(sat['cpu_ratio'])} (95% CI {_ci_pct(sat['cpu_ratio_ci'])}): "
                f"{extra_us:+.0f} us per offer, {extra_us * rate / 1e4:+.2f}% of a core",
                "< +5%", _status(sat["cpu_ratio"] < 1.05)))
        for key, label in (("answer_ms", "offer -> answer"), ("running_ms", "offer -> JS_RUNNING")):
            lat = mixed.get(key)
            if not lat:
                continue
            rows.append(_latency_row(f"Dispatch latency p50, {label}", lat,
                                     o.get("control", {}).get("mixed", {}).get(key)))
        sat_answer = o.get("saturated", {}).get("answer_ms")
        if sat_answer:
            rows.append(_latency_row(
                "Dispatch latency p50, offer -> refusal (saturated)", sat_answer,
                o.get("control", {}).get("saturated", {}).get("answer_ms")))
        rss = o["rss"]["rss_after_jobs"]
        rows.append(_row(f"Resident memory added (after {o['jobs_before_rss']:.0f} job requests)",
                         f"{rss['delta'] / 2**20:+.1f} MiB ({_mib(rss['bare'])} -> "
                         f"{_mib(rss['exporter'])})", "reported", "-"))
    if "lag" in r:
        lag = r["lag"]
        added = lag["exporter_added"]["p99_paired"]
        ci = lag["exporter_added"].get("p99_paired_ci", (added, added))
        rows.append(_row("Event-loop lag p99 added by 10 scrapes/s",
                         f"{added:+.3f} ms (95% CI {ci[0]:+.3f} .. {ci[1]:+.3f} ms; p99 "
                         f"{_ms(lag['none']['p99'], 3)} -> "
                         f"{_ms(lag['exporter']['p99'], 3)}; SDK endpoint "
                         f"{lag['sdk_added']['p99_paired']:+.3f} ms)", "< 1 ms",
                         _within(ci, 1.0)))
    if "scrape" in r:
        s = r["scrape"]
        if "cpu" in s:
            c, every = s["cpu"], 15.0
            share = [v / (every * 1e3) * 100 for v in c["total"]["ms_per_scrape_ci"]]
            rows.append(_row(
                "Scrape CPU at 15 s scrapes (worker + endpoint process)",
                f"{c['total']['ms_per_scrape'] / every / 10:.4f}% of a core (95% CI "
                f"{share[0]:.4f}% .. {share[1]:.4f}%): {c['worker']['ms_per_scrape']:.2f} ms "
                f"in the worker + {c['endpoint']['ms_per_scrape']:.2f} ms in the endpoint per "
                "scrape", "< 0.1% of a core", _within(share, 0.1)))
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
        rows.append(_row(
            f"Rule evaluation, {big['workers']:,} workers",
            f"{big['total_median_s']:.2f} s per evaluation (all groups, median; max "
            f"{sum(g['max_s'] for g in big['groups'].values()):.2f} s)",
            f"well inside {EVAL_INTERVAL_TARGET_S:g} s (< half)",
            _status(big["total_median_s"] < EVAL_INTERVAL_TARGET_S / 2)))
    return rows


def _latency_row(question: str, lat: dict[str, Any], control: dict[str, Any] | None) -> str:
    lo, hi = lat["p50_diff_ci"]
    text = (f"{_ms(lat['p50']['bare'])} -> {_ms(lat['p50']['exporter'])} (same offers, paired: "
            f"{lat['p50_diff']:+.3f} ms, 95% CI {_ci_ms(lat['p50_diff_ci'])})")
    if lo <= 0 <= hi:
        status = "met"
    elif hi < 0:
        status = f"met: faster by {-lat['p50_diff']:.3f} ms"
    elif control and control["p50_diff_ci"][0] <= lat["p50_diff"] <= control["p50_diff_ci"][1]:
        status = "met (within the A/A control's interval)"
    else:
        status = f"measurable: {lat['p50_diff']:+.3f} ms"
    if control:
        text += (f"; A/A control {control['p50_diff']:+.3f} ms "
                 f"({_ci_ms(control['p50_diff_ci'])})")
    return _row(question, text, "no measurable change", status)


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
             f"{ru['eval_interval_s']} s, ingestion paused while measuring; the two groups "
             "run concurrently, the total adds them up. "
             "Plot: [rule_eval.png](rule_eval.png).", "",
             _row("Workers", "head series", "recording group", "alerting group",
                  "total (median)", "max", "Prometheus RSS",
                  f"samples per {dense / 60:g}m window", "alerts firing / pending"),
             _row("---", "---", "---", "---", "---", "---", "---", "---", "---")]
    for f in ru["fleets"]:
        groups = f["groups"]
        rec = groups.get("livekit-agents.rules", {})
        alert = groups.get("livekit-agents.alerts", {})
        lines.append(_row(
            f"{f['workers']:,}", f"{f['head_series']:,.0f}" if f["head_series"] else "n/a",
            f"{rec.get('median_s', math.nan):.3f} s", f"{alert.get('median_s', math.nan):.3f} s",
            f"{f['total_median_s']:.3f} s",
            f"{sum(g['max_s'] for g in groups.values()):.3f} s",
            _mib(f["prometheus_rss_bytes"]) if f["prometheus_rss_bytes"] else "n/a",
            f"{f['checks']['samples_in_window']:.0f}",
            f"{f['checks'].get('alerts_firing', math.nan):.0f} / "
            f"{f['checks'].get('alerts_pending', math.nan):.0f}"))
    if ru.get("baseline_v1"):
        lines += ["", "Alert pack v1 (`benchmarks/rules_v1.yaml`, the pack before v2) on the "
                  "same fleets in the same run:", "",
                  _row("Workers", "v1 total (median)", "shipped total (median)", "shipped / v1"),
                  _row("---", "---", "---", "---")]
        for f, b, r in zip(ru["fleets"], ru["baseline_v1"], ru["shipped_over_v1"],
                           strict=True):
            lines.append(_row(f"{f['workers']:,}", f"{b['total_median_s']:.3f} s",
                              f"{f['total_median_s']:.3f} s", f"x{r['shipped_over_v1']:.2f}"))
    big = max(ru["fleets"], key=lambda f: f["workers"])
    if big.get("top_rules"):
        lines += ["", f"Most expensive rules at {big['workers']:,} workers: " + "; ".join(
            f"`{name.split('/', 2)[2]}` {t:.3f} s" for t, name in big["top_rules"]) + "."]
    return lines


# --- the plot -------------------------------------------------------------------------------

def plot_rules(ru: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fleets = sorted(ru["fleets"], key=lambda f: f["workers"])
    xs = [f["workers"] for f in fleets]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    series = {"recording rules": "livekit-agents.rules", "alerting rules": "livekit-agents.alerts"}
    for label, group in series.items():
        ys = [f["groups"].get(group, {}).get("median_s", float("nan")) for f in fleets]
        ax.plot(xs, ys, marker="o", label=label)
    totals = [f["total_median_s"] for f in fleets]
    ax.plot(xs, totals, marker="s", linewidth=2, color="black", label="total")
    for x, y in zip(xs, totals, strict=True):
        ax.annotate(f"{y:.2f} s", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.axhline(EVAL_INTERVAL_TARGET_S, color="red", linestyle="--",
               label=f"evaluation interval {EVAL_INTERVAL_TARGET_S:g} s")
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
