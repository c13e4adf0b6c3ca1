"""Run the benchmark suite and write ``benchmarks/results/latest.md`` and ``rule_eval.png``.

    python benchmarks/run.py            # the full suite (about 15 minutes on 2 cores)
    python benchmarks/run.py --quick    # shorter runs, smaller fleets (about 3 minutes)
    python benchmarks/run.py --only micro,scrape
    python benchmarks/run.py --only lag --rounds lag=40 --merge   # one suite, resized

Every result is a comparison measured in the same run: the exporter against the bare
SDK (same worker code, same simulator, same offers), the exporter's endpoint against
the SDK's own, scrapes against no scrapes. See benchmarks/README.md for the methods.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
try:
    import livekit_agents_exporter  # noqa: F401 - only whether it imports
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO / "exporter"))

SUITES = ("micro", "overhead", "lag", "scrape", "rules")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="LiveKit Agents exporter benchmarks")
    p.add_argument("--quick", action="store_true", help="shorter runs and smaller fleets")
    p.add_argument("--only", default=",".join(SUITES),
                   help=f"comma-separated subset of {','.join(SUITES)}")
    p.add_argument("--out", type=Path, default=HERE / "results",
                   help="where latest.md, latest.json and rule_eval.png go")
    p.add_argument("--sizes", default=None,
                   help="fleet sizes for the rule benchmark (default 100,1000,10000; "
                        "quick: 100,1000)")
    p.add_argument("--rounds", default="", metavar="SUITE=N,...",
                   help="size the suites whose figures have budgets: overhead=N segments per "
                        "process pair, lag=N rounds, scrape=N CPU pairs (the report's Sizing "
                        "table says how many would decide an inconclusive figure)")
    p.add_argument("--merge", action="store_true",
                   help="keep the results of the suites not run (see --only) from the existing "
                        "latest.json, so that one suite can be rerun with more rounds")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite latest.md, rule_eval.png and the README's performance table "
                        "from latest.json, measure nothing")
    return p.parse_args(argv)


SIZED = ("overhead", "lag", "scrape")


def parse_rounds(text: str) -> dict[str, int]:
    """``overhead=12,lag=40`` -> {"overhead": 12, "lag": 40}; a bad item raises ValueError."""
    out: dict[str, int] = {}
    for item in (i.strip() for i in text.split(",") if i.strip()):
        name, _, value = item.partition("=")
        if name not in SIZED:
            raise ValueError(f"{name!r} is not one of {', '.join(SIZED)}")
        if not value.isdigit() or int(value) < 2:
            raise ValueError(f"{item!r}: the count must be a whole number of at least 2")
        out[name] = int(value)
    return out


def merge_previous(results: dict[str, Any], previous: dict[str, Any]) -> list[str]:
    """Copy into ``results`` the suites it lacks from ``previous``; returns their names."""
    kept = [s for s in SUITES if s not in results and s in previous]
    for suite in kept:
        results[suite] = previous[suite]
        if suite in previous.get("durations_s", {}):
            results["durations_s"][suite] = previous["durations_s"][suite]
    if kept:
        results["suites"] = [s for s in SUITES if s in results]
        results["command"] += f" (other suites from: {previous.get('command', 'unknown')})"
    return kept


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_only:
        import report

        results = json.loads((args.out / "latest.json").read_text())
        try:
            import matplotlib  # noqa: F401 (only whether it is installed)
            can_plot = True
        except ImportError:
            can_plot = False
            print("skipping rule_eval.png: matplotlib is not installed", file=sys.stderr)
        report.write_reports(results, args.out, plot=can_plot)
        for line in report.sizing_summary(results):
            print(line)
        return 0
    try:
        rounds = parse_rounds(args.rounds)
    except ValueError as e:
        print(f"--rounds: {e}", file=sys.stderr)
        return 2
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SUITES))
    if unknown:
        print(f"unknown suite(s): {', '.join(unknown)}; choose from {', '.join(SUITES)}",
              file=sys.stderr)
        return 2
    sizes = ([int(x) for x in args.sizes.split(",")] if args.sizes
             else [100, 1000] if args.quick else [100, 1000, 10_000])
    skipped: dict[str, str] = {}
    if "rules" in only and shutil.which("prometheus") is None:
        skipped["rules"] = "no `prometheus` binary on PATH (apt-get install prometheus)"
        only.remove("rules")
    try:
        import matplotlib  # noqa: F401 - only whether it imports
        can_plot = True
    except ImportError:
        can_plot = False
        if "rules" in only:
            skipped["rule_eval.png"] = "matplotlib is not installed (pip install matplotlib)"
    for what, why in skipped.items():
        print(f"skipping {what}: {why}", file=sys.stderr, flush=True)
    out: Path = args.out
    tmp = out / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, exist_ok=True)

    import report
    from harness import machine_description

    def log(message: str) -> None:
        print(message, flush=True)

    results: dict[str, Any] = {"quick": args.quick, "suites": only, "durations_s": {},
                               "skipped": skipped}
    started = time.monotonic()
    for suite in SUITES:
        if suite not in only:
            continue
        t0 = time.monotonic()
        log(f"== {suite}")
        if suite == "micro":
            import micro

            results["micro"] = micro.run(args.quick, log)
        elif suite == "overhead":
            import overhead

            results["overhead"] = overhead.run(args.quick, tmp / "overhead", log,
                                               rounds.get("overhead"))
        elif suite == "lag":
            import loop_lag

            results["lag"] = loop_lag.run(args.quick, tmp / "lag", log, rounds.get("lag"))
        elif suite == "scrape":
            import scrape

            results["scrape"] = scrape.run(args.quick, tmp / "scrape", log, rounds.get("scrape"))
        elif suite == "rules":
            import rules_scale

            captured = results.get("scrape")
            if captured is None:
                import scrape

                log("  capturing a worker's exposition for the fleet template")
                captured = scrape.run(True, tmp / "scrape", log)
            results["rules"] = rules_scale.run(
                captured["template"], captured["template_captured_at"], sizes,
                2 if args.quick else 5, tmp / "rules", log)
        results["durations_s"][suite] = round(time.monotonic() - t0, 1)
    results["total_s"] = round(time.monotonic() - started, 1)
    results["machine"] = machine_description()
    results["versions"] = report.versions()
    results["command"] = "python benchmarks/run.py" + (" --quick" if args.quick else "") + (
        f" --only {args.only}" if args.only != ",".join(SUITES) else "") + (
        f" --rounds {args.rounds}" if args.rounds else "") + (" --merge" if args.merge else "")
    for key in ("template", "template_captured_at"):
        results.get("scrape", {}).pop(key, None)

    out.mkdir(parents=True, exist_ok=True)
    if args.merge and (out / "latest.json").exists():
        kept = merge_previous(results, json.loads((out / "latest.json").read_text()))
        log(f"kept from the previous latest.json: {', '.join(kept) or 'nothing'}")
    (out / "latest.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    written = report.write_reports(results, out, plot=can_plot)
    shutil.rmtree(tmp, ignore_errors=True)
    for line in report.sizing_summary(results):
        log(line)
    log(f"wrote {', '.join(str(p) for p in written)} in {results['total_s']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
