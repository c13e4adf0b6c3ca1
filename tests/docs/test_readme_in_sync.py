"""The README's metric table is generated from the catalogue and must not drift."""

from __future__ import annotations

from pathlib import Path

from livekit_agents_exporter.commands.metrics_doc import TABLE_BEGIN, TABLE_END, render_table
from livekit_agents_exporter.metrics import CATALOGUE, PREFIX

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_metric_table_matches_catalogue():
    text = README.read_text()
    assert TABLE_BEGIN in text and TABLE_END in text, "README lost its metrics table markers"
    embedded = text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].strip()
    assert embedded == render_table(), (
        "README metric table is stale: run `make generate` and commit the result")


def test_catalogue_follows_prometheus_naming():
    for spec in CATALOGUE:
        assert spec.name.startswith(PREFIX)
        assert spec.name == spec.name.lower()
        assert not spec.name.endswith("_total"), "counters get _total from the client"
        if spec.kind == "counter":
            assert spec.series_name.endswith("_total")
        if "seconds" in spec.short:
            assert spec.short.endswith("_seconds") or spec.short.endswith("_seconds_total") \
                or spec.kind == "counter"
        assert spec.help.endswith(".") or spec.help.endswith(")")
        assert "agent_name" not in spec.labels  # added to every series by the recorder


def test_readme_performance_table_is_the_published_results():
    """The README's performance table is rendered from benchmarks/results/latest.json, with
    each budget's equivalence verdict; a rerun that did not regenerate it fails here."""
    import importlib.util
    import json
    import sys

    benchmarks = README.parent / "benchmarks"
    sys.path.insert(0, str(benchmarks))  # for report's own `from stats import ...`
    # under a name of its own: tests/e2e has a report.py too
    spec = importlib.util.spec_from_file_location("benchmarks_report", benchmarks / "report.py")
    assert spec and spec.loader
    report = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = report  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(report)
    finally:
        sys.path.remove(str(benchmarks))
    text = README.read_text()
    assert report.README_TABLE_BEGIN in text and report.README_TABLE_END in text, (
        "README lost its performance-table markers")
    embedded = text.split(report.README_TABLE_BEGIN, 1)[1].split(report.README_TABLE_END, 1)[0]
    results = json.loads((benchmarks / "results" / "latest.json").read_text())
    assert embedded.strip() == report.readme_table(results), (
        "README performance table differs from benchmarks/results/latest.json: run "
        "`make generate` (or `python benchmarks/report.py --report-only` after a run)")
    budgeted = [f.question for f in report.figures(results)]
    rows = {line.split(" | ")[0].lstrip("| "): line.rsplit(" | ", 1)[1].rstrip(" |")
            for line in embedded.strip().splitlines() if line.startswith("| ")}
    for question in budgeted:
        assert rows[question].startswith(("met", "not met", "inconclusive")), rows[question]
