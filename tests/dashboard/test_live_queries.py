"""Every panel query, run against a real Prometheus that scraped a fleet, returns data.

Variables are interpolated as Grafana would with every filter at All, a 1 s step and
``$__rate_interval`` as Grafana computes it for a 1 s scrape interval. A query that
returns nothing (or only NaN) within the time budget fails with its panel's title.
What is scraped comes from ``dash_live.exposition_source``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import dash_lint as L
import dash_live
import pytest
from dash_live import Live

from livekit_agents_exporter import metrics as m
from livekit_agents_exporter.dashboard import COMMITTED_PATH
from livekit_agents_exporter.prometheus_runner import PrometheusAPIError

pytestmark = pytest.mark.slow

DASHBOARD = json.loads((Path(__file__).resolve().parents[2] / COMMITTED_PATH).read_text())
# From the first scrape: enough for rates over 4 s, histograms to fill, alerts to fire.
BUDGET_S = 60.0
RANGE_KINDS = ("timeseries", "heatmap", "state-timeline")

TARGETS = [
    pytest.param(p["title"], t["refId"], t["expr"], p["type"] not in RANGE_KINDS,
                 id=f"{p['title']}[{t['refId']}]")
    for p, _, t in L.targets(DASHBOARD)
]


def _values(live: Live, start: float, end: float) -> dict[str, str]:
    return {**dash_live.all_values(DASHBOARD), "__rate_interval": dash_live.RATE_INTERVAL,
            "__range": f"{max(1, round(end - start))}s", "__interval": "1s"}


def _run(live: Live, expr: str, instant: bool) -> tuple[str, list[dict[str, Any]]]:
    end = time.time()
    start = max(live.started, end - 600)
    query = dash_live.interpolate(expr, _values(live, start, end))
    if instant:
        return query, live.prom.query(query, end)
    return query, live.prom.query_range(query, start, end, 1)


@pytest.mark.parametrize("title, ref, expr, instant", TARGETS)
def test_panel_query_returns_data(title: str, ref: str, expr: str, instant: bool,
                                  live: Live) -> None:
    while True:
        try:
            query, result = _run(live, expr, instant)
        except PrometheusAPIError as exc:
            pytest.fail(f"panel {title!r} query {ref}: Prometheus refused it: {exc}\n{expr}")
        if dash_live.finite(result):
            return
        if time.time() > live.started + BUDGET_S:
            pytest.fail(f"panel {title!r} query {ref} returned no data after {BUDGET_S:.0f} s:"
                        f"\n{query}")
        time.sleep(0.5)


VARIABLES = [t for t in DASHBOARD["templating"]["list"] if t["type"] == "query"]


@pytest.mark.parametrize("variable", VARIABLES, ids=[t["name"] for t in VARIABLES])
def test_variable_lists_values(variable: dict[str, Any], live: Live) -> None:
    """label_values(selector, label) finds values, as Grafana's variable query would."""
    label = variable["name"]
    if label in ("cluster", "namespace") and not any(label in g.labels for g in live.groups):
        pytest.skip(f"the exposition source sets no {label} target label")
    head = L.template_query(variable).split("(", 1)[1].rsplit(",", 1)[0]
    selector = dash_live.interpolate(head, dash_live.all_values(DASHBOARD))
    deadline = live.started + BUDGET_S
    while not (values := live.prom.label_values(label, selector, live.started - 60,
                                                time.time())):
        if time.time() > deadline:
            pytest.fail(f"variable {label!r} lists no value: {selector}")
        time.sleep(0.5)
    assert all(v for v in values)


def test_every_catalogue_metric_is_scraped(live: Live) -> None:
    """The exposition source exposes the whole catalogue (or the panels prove less).

    ``exporter_errors`` is left out: its series appear with a component's first error.
    """
    wanted = {s.name + "_bucket" if s.kind == "histogram" else s.series_name
              for s in m.CATALOGUE if s.short != "exporter_errors"}
    jobs = "|".join(sorted({g.job for g in live.groups}))
    deadline = live.started + BUDGET_S
    while True:
        result = live.prom.query(f'group by (__name__) ({{job=~"{jobs}", '
                                 f'__name__=~"{m.PREFIX}.+"}})', time.time())
        missing = wanted - {r["metric"]["__name__"] for r in result}
        if not missing or time.time() > deadline:
            break
        time.sleep(0.5)
    assert not missing, f"not scraped: {sorted(missing)}"
