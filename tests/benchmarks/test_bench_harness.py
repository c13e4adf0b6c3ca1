"""The benchmark harness still drives real workers (a change to the simulator once broke
it silently: every offer failed inside a task nobody awaited), and the report judges each
budget by its whole confidence interval (an equivalence test), not by its point estimate."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))


def bench_module(name: str) -> Any:
    """benchmarks/<name>.py under a name of its own: tests/e2e has a report.py too, and
    whichever directory comes first on sys.path would win a plain import."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


from harness import JobMix, drive, simulator, start_worker, stop_worker  # noqa: E402 (needs the path)
from stats import INCONCLUSIVE, MET, NOT_MET, equivalence  # noqa: E402 (needs the path)


async def test_paired_offers_reach_both_workers_and_are_timed(tmp_path):
    async with simulator() as sim:
        bare = await start_worker(sim, instrument=False, log_dir=tmp_path)
        hooked = await start_worker(sim, instrument=True, log_dir=tmp_path)
        try:
            seqs = await drive(sim, [bare.worker_id, hooked.worker_id],
                               JobMix(rate=20.0, job_s=0.1), 1.5, seed=1)
            assert len(seqs) >= 10
            answers = sim.paired("answer", bare.worker_id, hooked.worker_id, seqs)
            assert len(answers) == len(seqs)
            assert all(0 < a < 5 and 0 < b < 5 for a, b in answers)
            assert hooked.exporter_url and bare.exporter_url is None
        finally:
            await stop_worker(sim, bare)
            await stop_worker(sim, hooked)


# --- budget verdicts: equivalence tests on the interval, not on the point estimate ----------


@pytest.mark.parametrize(("estimate", "ci", "status"), [
    (0.3, (0.1, 0.9), MET),             # the whole interval inside the 1 ms budget
    (1.5, (1.1, 2.0), NOT_MET),         # the whole interval outside
    (1.0, (1.0, 1.4), NOT_MET),         # touching from outside: the budget is "< 1 ms"
    (0.015, (-0.884, 3.675), INCONCLUSIVE),  # a median inside, the interval straddling
    (1.2, (0.8, 1.6), INCONCLUSIVE),    # a median outside, the interval straddling
    (-0.2, (-0.2, 41.9), INCONCLUSIVE),  # "no measurable change" is not "met"
])
@pytest.mark.sdk_independent
def test_a_figure_is_met_only_when_its_whole_interval_is_inside_the_budget(estimate, ci, status):
    verdict = equivalence(estimate, ci, 1.0, rounds=6)
    assert verdict.status == status, (estimate, ci, verdict)
    assert verdict.half_width == pytest.approx((ci[1] - ci[0]) / 2)
    assert (verdict.rounds_to_decide is None) == (status != INCONCLUSIVE), verdict


@pytest.mark.sdk_independent
def test_rounds_to_decide_scale_with_the_square_of_the_interval_over_the_gap():
    # estimate 0.5 ms under a 1 ms budget, upper side 1.5 ms from it: three times the gap,
    # so nine times the rounds at the observed spread
    verdict = equivalence(0.5, (0.2, 2.0), 1.0, rounds=6)
    assert verdict.status == INCONCLUSIVE
    assert verdict.rounds_to_decide == 54 and verdict.more_rounds == 48, verdict
    assert "about 48 more rounds to decide (54 in all, 6 run)" in verdict.text(), verdict.text()
    # above the budget: the lower side is the one that must clear it
    above = equivalence(1.2, (0.9, 1.5), 1.0, rounds=10)
    assert above.rounds_to_decide == math.ceil(10 * (0.3 / 0.2) ** 2), above


@pytest.mark.sdk_independent
def test_an_estimate_on_the_budget_or_a_missing_interval_cannot_be_sized():
    on_budget = equivalence(1.0, (0.5, 1.5), 1.0, rounds=6)
    assert on_budget.status == INCONCLUSIVE and on_budget.rounds_to_decide is None
    assert "cannot decide" in on_budget.text()
    missing = equivalence(math.nan, (math.nan, math.nan), 1.0, rounds=0)
    assert missing.status == INCONCLUSIVE and missing.rounds_to_decide is None


@pytest.mark.sdk_independent
def test_the_published_report_judges_every_budget_by_its_interval():
    report = bench_module("report")

    results = json.loads((BENCHMARKS / "results" / "latest.json").read_text())
    figures = {f.question: f for f in report.figures(results)}
    lag = results["lag"]["exporter_added"]
    [lag_figure] = [f for q, f in figures.items() if q.startswith("Event-loop lag")]
    assert lag_figure.verdict.status == equivalence(
        lag["p99_paired"], lag["p99_paired_ci"], 1.0, results["lag"]["rounds"]).status
    for f in figures.values():
        ci = [float(x) for x in re.findall(r"[-+]?\d+\.\d+", f.result.split("95% CI", 1)[1])][:2]
        assert f.verdict.half_width > 0 and ci[0] <= ci[1], f
        if f.verdict.status == INCONCLUSIVE:
            assert "more" in f.status or "cannot decide" in f.status, f.status
    sizing = "\n".join(report.sizing_table(results))
    for f in figures.values():
        assert f.question in sizing, f"sizing table lacks {f.question}"


@pytest.mark.sdk_independent
def test_rounds_option_sizes_the_budgeted_suites_and_refuses_anything_else():
    run = bench_module("run")

    assert run.parse_rounds("overhead=12, lag=40") == {"overhead": 12, "lag": 40}
    assert run.parse_rounds("") == {}
    for bad, message in (("rules=3", "'rules' is not one of overhead, lag, scrape"),
                         ("lag=1", "'lag=1': the count must be a whole number of at least 2"),
                         ("lag=x", "'lag=x': the count must be a whole number of at least 2")):
        with pytest.raises(ValueError) as e:
            run.parse_rounds(bad)
        assert str(e.value) == message


@pytest.mark.sdk_independent
def test_merge_keeps_the_suites_not_rerun():
    run = bench_module("run")

    previous = {"command": "python benchmarks/run.py", "suites": ["overhead", "lag"],
                "overhead": {"x": 1}, "lag": {"old": True}, "durations_s": {"overhead": 9.0}}
    results = {"command": "python benchmarks/run.py --only lag", "suites": ["lag"],
               "lag": {"new": True}, "durations_s": {"lag": 2.0}}
    assert run.merge_previous(results, previous) == ["overhead"]
    assert results["lag"] == {"new": True} and results["overhead"] == {"x": 1}
    assert results["suites"] == ["overhead", "lag"]
    assert results["durations_s"] == {"lag": 2.0, "overhead": 9.0}
    assert results["command"].endswith("(other suites from: python benchmarks/run.py)")


def test_the_rule_verdict_needs_every_evaluation_of_every_group_under_the_budget():
    report = bench_module("report")
    ok = {"a": {"median_s": 1.0, "max_s": 2.0}, "b": {"median_s": 3.0, "max_s": 7.0}}
    assert report.rule_verdict(ok, 7.5) == "met"
    near = {**ok, "m": {"median_s": 7.4, "max_s": 8.4}}
    assert report.rule_verdict(near, 7.5).startswith("inconclusive: `m`'s slowest evaluation")
    over = {**ok, "m": {"median_s": 7.6, "max_s": 8.4}}
    assert report.rule_verdict(over, 7.5) == "not met"
