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
