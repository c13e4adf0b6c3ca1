"""Runs the pager-path scenario once and prints its figures as Markdown.

    PYTHONPATH=exporter python tests/e2e/report.py [--seed N] [--json timeline.json]

Needs livekit-agents, and prometheus and prometheus-alertmanager on PATH (Debian
packages of those names). Takes about two and a half minutes. The production column
is computed, not run: the measured parts of the pipeline that do not depend on
Prometheus' intervals, plus production intervals and the shipped ``for:`` durations
(see docs/PAGER_PATH.md for the model).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from pager_scenario import (
    ASSIGNMENT_TIMEOUT,
    CAPACITY_LOW,
    EXHAUSTION,
    Figures,
    ScenarioConfig,
    Timeline,
    describe,
    figures,
    run_scenario,
)

from livekit_agents_exporter.prometheus_runner import find_binary
from livekit_agents_exporter.rules import load_config


@dataclass(frozen=True)
class Production:
    """Common production settings: Prometheus' example config, Alertmanager's defaults."""

    scrape: float = 15.0
    evaluation: float = 15.0
    group_wait: float = 30.0

    def detection(self) -> tuple[float, float]:
        """Event on /metrics -> alert pending: next scrape, recording group, alert group.

        Each wait is up to one interval (the alert group may read the recording rules one
        evaluation late); the mean is half of each.
        """
        worst = self.scrape + 2 * self.evaluation
        return worst / 2, worst


def _s(value: float | None, signed: bool = False) -> str:
    """Seconds as people read them: 3.6 s, 1 min 53 s; with a sign when asked."""
    if value is None:
        return "n/a"
    size = abs(value)
    if size < 60:
        text = f"{size:.1f} s"
    else:
        minutes, seconds = divmod(round(size), 60)
        text = f"{minutes} min {seconds:02d} s" if seconds else f"{minutes} min"
    sign = ("-" if value < 0 else "+") if signed else ""
    return sign + text


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _lead(value: float | None) -> str:
    if value is None:
        return "did not fire"
    return f"{_s(value)} before" if value >= 0 else f"{_s(-value)} after"


def _version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10,
                             check=False)
    except OSError:
        return "?"
    words = (out.stdout or out.stderr).split()
    return words[words.index("version") + 1] if "version" in words else "?"


def table(tl: Timeline, f: Figures, prod: Production = Production()) -> str:
    cfg = tl.config
    shipped = load_config()
    ship_for = {key: a.for_.seconds for key, a in shipped.alerts.items()}
    prod_mean, prod_worst = prod.detection()
    test_worst = cfg.scrape_interval + 2 * cfg.evaluation_interval
    overhead = None if f.delivery is None else f.delivery - cfg.group_wait  # AM + HTTP
    exposure = f.exposure or 0.0
    sent = overhead or 0.0

    def page(for_s: float, detect: float) -> float:
        return exposure + detect + for_s + prod.group_wait + sent

    prod_floor = prod.scrape + prod.evaluation + ship_for["no_capacity"]
    stretch = round(1 / cfg.scale, 6)

    def warning(name: str, key: str) -> tuple[str, str]:
        lead = f.warning_lead.get(name)
        cond = f.warning_condition.get(name)
        episode = tl.episode(name, after=tl.phase("ramp")[0])
        if name == EXHAUSTION and episode is not None and tl.first_loss is not None \
                and f.detection is not None:
            # the trend clause turns true later than the headroom clause: use when the
            # whole condition held (pending, less the measured pipeline detection)
            cond = tl.first_loss - (episode.active_at - f.detection)
        if cond is None:
            return _lead(lead), "n/a"
        prod_lead = cond * stretch - (ship_for[key] + prod_mean + prod.group_wait + sent)
        return _lead(lead), _lead(prod_lead)

    exh_test, exh_prod = warning(EXHAUSTION, "capacity_exhaustion_predicted")
    low_test, low_prod = warning(CAPACITY_LOW, "capacity_low")
    healthy_start, healthy_end = tl.phase("healthy")
    healthy_n = sum(1 for d in tl.dispatches if d.phase == "healthy")
    t = tl.exporter_totals
    truth = tl.truth_totals
    timeouts_prod = (ASSIGNMENT_TIMEOUT + prod_mean + ship_for["assignment_timeouts"]
                     + prod.group_wait + sent)

    def eq(name: str) -> str:
        a, b = t.get(f"livekit_agents_{name}_total"), truth.get(f"livekit_agents_{name}_total")
        mark = "=" if a == b else "≠"
        return f"{a:.0f} {mark} {b:.0f}" if a is not None and b is not None else "n/a"

    rows = [
        ("First lost dispatch → critical page (`LiveKitAgentsNoCapacity`) at the webhook",
         f"**{_s(f.page_after_loss)}**",
         f"≈ {_s(page(ship_for['no_capacity'], prod_mean))} "
         f"(at most {_s(page(ship_for['no_capacity'], prod_worst))})"),
        ("Floor: scrape interval + evaluation interval + `for:`", _s(f.floor), _s(prod_floor)),
        (f"Bursty: {cfg.bursts} bursts of {cfg.burst_size} dispatches for {cfg.slots} slots "
         f"every {cfg.burst_every:g} s, jobs held until the burst is answered and "
         f"{cfg.burst_hold:g} s more (a free worker at "
         f"{_pct(f.burst_available_share)} of the evaluations): first lost dispatch → page",
         f"**{_s(f.burst_page_after_loss)}** ({f.burst_lost_before_page} of {f.burst_lost} "
         f"lost dispatches before it)",
         f"≈ {_s(page(ship_for['no_capacity'], prod_mean))} "
         f"(at most {_s(page(ship_for['no_capacity'], prod_worst))})"),
        ("… first lost dispatch → exporters show no capacity", _s(f.exposure, signed=True),
         "same"),
        ("… → alert pending in Prometheus (scrape + rule evaluation)",
         f"{_s(f.detection)} (model: ≤ {_s(test_worst)})",
         f"≈ {_s(prod_mean)} (≤ {_s(prod_worst)})"),
        ("… → firing (`for:`)", _s(f.pending_for), _s(ship_for["no_capacity"])),
        ("… → webhook (Alertmanager `group_wait` + delivery)",
         f"{_s(f.delivery)} (group_wait {_s(cfg.group_wait)})",
         f"≈ {_s(prod.group_wait + sent)} (group_wait {_s(prod.group_wait)})"),
        (f"Early warning vs first lost dispatch, linear ramp of one slot every "
         f"{cfg.ramp_step:g} s (production: every {_s(cfg.ramp_step * stretch)}): "
         f"`LiveKitAgentsCapacityExhaustionPredicted`", exh_test, exh_prod),
        ("… `LiveKitAgentsCapacityLow`", low_test, low_prod),
        (f"False alerts in the healthy bursty phase ({healthy_n} jobs in "
         f"{healthy_end - healthy_start:.0f} s, up to {_peak(tl)} at once)",
         f"{f.healthy_firing} (pending: {f.healthy_pending})", "0 (longer `for:`)"),
        ("Withheld assignment accepted → `LiveKitAgentsAssignmentTimeouts` at the webhook",
         f"{_s(f.timeout_page)} (floor {_s(f.timeout_floor)})", f"≈ {_s(timeouts_prod)}"),
        ("Exporters' totals vs simulator: offers, refused, assignment timeouts",
         f"{eq('job_requests')}, {eq('job_requests_rejected')}, {eq('assignment_timeouts')}",
         "same code path"),
    ]
    notes = [
        f"`{shipped.alert(key).name}` leads only if the fleet takes more than "
        f"{_s(ship_for[key] + prod_mean + prod.group_wait + sent)} to fill from "
        f"{shipped.alert(key).params['headroom_below']:.0%} headroom"
        for key in ("capacity_exhaustion_predicted", "capacity_low")
    ]
    head = (f"| figure | test run: {cfg.scrape_interval:g} s scrape and evaluation, `for:` "
            f"× 1/{stretch:g}, group_wait {cfg.group_wait:g} s | production defaults "
            f"(projected): {prod.scrape:g} s scrape and evaluation, shipped `for:`, group_wait "
            f"{prod.group_wait:g} s |\n| --- | --- | --- |")
    body = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return f"{head}\n{body}\n\nWith production defaults, " + "; ".join(notes) + "."


def _peak(tl: Timeline) -> str:
    return f"{tl.peak_jobs.get('healthy', 0)} of {tl.config.slots} slots"


def timeline_table(tl: Timeline) -> str:
    ramp, _ = tl.phase("ramp")
    events: list[tuple[float, str]] = []
    for name, (start, _) in tl.phases.items():
        if name != "settle":
            events.append((start, f"phase **{name}** starts"))
    if tl.fleet_full is not None:
        events.append((tl.fleet_full, f"last slot taken ({tl.ramp_jobs} ramp jobs)"))
    if tl.first_loss is not None:
        events.append((tl.first_loss, "first lost dispatch (`no_worker_available`)"))
    if tl.burst_first_loss is not None:
        events.append((tl.burst_first_loss, "bursts: first lost dispatch"))
    below = {key: tl.rules.alert(key).params["headroom_below"]
             for key in ("capacity_exhaustion_predicted", "capacity_low")}
    labels = {"headroom<exhaustion": f"exporters: headroom below "
                                     f"{below['capacity_exhaustion_predicted']:.0%}",
              "headroom<low": f"exporters: headroom below {below['capacity_low']:.0%}",
              "no_capacity": "exporters: no worker can take a job"}
    events += [(at, labels.get(k, k)) for k, at in tl.exposed.items()]
    for n in tl.notifications:
        events.append((n.received, f"webhook: `{n.alertname}` {n.status}"))
    if tl.first_withheld is not None:
        events.append((tl.first_withheld, "first accepted job whose assignment is withheld"))
    lines = ["| t (s from ramp start) | event |", "| ---: | --- |"]
    lines += [f"| {at - ramp:+.1f} | {what} |" for at, what in sorted(events)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=ScenarioConfig.seed)
    p.add_argument("--json", type=Path, help="also write the whole timeline here")
    p.add_argument("--bursts", type=int, default=ScenarioConfig.bursts,
                   help="bursts in the bursts phase (0: none)")
    args = p.parse_args(argv)
    prometheus, alertmanager = find_binary("prometheus"), find_binary("prometheus-alertmanager")
    if not prometheus or not alertmanager:
        print("needs prometheus and prometheus-alertmanager on PATH "
              "(apt-get install prometheus prometheus-alertmanager)", file=sys.stderr)
        return 2
    cfg = replace(ScenarioConfig(), prometheus=prometheus, alertmanager=alertmanager,
                  seed=args.seed, bursts=args.bursts)
    with tempfile.TemporaryDirectory(prefix="lkx-pager-path-") as tmp:
        tl = asyncio.run(run_scenario(cfg, Path(tmp)))
    if args.json:
        args.json.write_text(tl.to_json())
    print(describe(tl), file=sys.stderr)
    print(f"livekit-agents {tl.sdk_version}, Prometheus {_version(prometheus)}, "
          f"Alertmanager {_version(alertmanager)}; {cfg.workers} workers × "
          f"{cfg.slots_per_worker} slots, one ramp job every {cfg.ramp_step:g} s, seed "
          f"{cfg.seed}; {tl.wall_seconds:.0f} s wall.\n")
    print(table(tl, figures(tl)))
    print()
    print(timeline_table(tl))
    if tl.failures:
        print("\nThe run did not complete: " + "; ".join(tl.failures))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
