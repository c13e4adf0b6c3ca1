"""A real Prometheus scraping an exposition source, for the live-query tests.

``exposition_source()`` is the one function that decides what Prometheus scrapes. It
yields scrape groups (``ScrapeTarget``: a job name, ``host:port`` addresses and
target labels) of the real instrumented fleet in ``dash_real_fleet``: real livekit-agents
workers wrapped by ``instrument()`` and driven by the dispatch simulator.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from livekit_agents_exporter.prometheus_runner import Prometheus, ScrapeTarget
from livekit_agents_exporter.rules import load_config, render_rules

SCRAPE_INTERVAL_S = 1
# What Grafana would put in $__rate_interval for a 1 s scrape interval and a 1 s step:
# max($__interval + scrape interval, 4 * scrape interval).
RATE_INTERVAL = f"{4 * SCRAPE_INTERVAL_S}s"
JOB = "livekit-agents"
SERVER_LOG_JOB = "livekit-server-log"  # mtail reading the simulator's dispatch log


@contextmanager
def exposition_source() -> Iterator[list[ScrapeTarget]]:
    """What Prometheus scrapes: a real instrumented fleet driven by the simulator."""
    from dash_real_fleet import real_fleet

    with real_fleet() as fleet:
        yield [*(ScrapeTarget(JOB, addresses, labels) for labels, addresses in fleet.targets()),
               ScrapeTarget(SERVER_LOG_JOB, [fleet.server_log_target()], {"cluster": "eu"})]


# --- rules ----------------------------------------------------------------------------


def rule_document() -> dict[str, Any]:
    """The alert pack's rules, every for: a hundred times shorter, so that alerts fire."""
    return render_rules(load_config().scaled(0.01))


@dataclass
class Live:
    """A running Prometheus that scrapes the exposition source and evaluates the rules."""

    prom: Prometheus
    groups: list[ScrapeTarget]
    started: float  # wall clock when every target was up


# --- Grafana's side: variable interpolation --------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def interpolate(expr: str, values: dict[str, str]) -> str:
    """Replace ``$name``/``${name}`` everywhere, quoted strings included, as Grafana does."""
    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]
    return _VARIABLE.sub(sub, expr)


def all_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """Every variable at its default: All (its allValue) for the label filters."""
    values: dict[str, str] = {}
    for t in dashboard["templating"]["list"]:
        if t.get("includeAll"):
            values[t["name"]] = t["allValue"]
        elif t["type"] in ("textbox", "constant"):
            values[t["name"]] = t["query"]
    return values


def finite(result: list[dict[str, Any]]) -> bool:
    """At least one sample that is a number (histogram_quantile of nothing is NaN)."""
    for series in result:
        samples = series.get("values") or [series.get("value")]
        for sample in samples:
            if sample and math.isfinite(float(sample[1])):
                return True
    return False
