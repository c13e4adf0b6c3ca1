"""Every panel shows the same figures when each worker is read twice as when it is read once.

Two scrape configs reading the same pods (a PodMonitor and a ServiceMonitor with the same
``job`` label) or an HA Prometheus pair behind an undeduplicated global view give every
worker series twice, differing only in a label that is not a worker label. The recording
rules count such a worker once (``promql.dedup``); so must the dashboard.

The samples are real: what the session's Prometheus scraped from the real instrumented
fleet (``dash_live``), read back raw through its HTTP API. They are written once as they
are and once with every worker series doubled, each set loaded into a Prometheus of its
own with ``promtool tsdb create-blocks-from openmetrics``, so both evaluate every panel
query over exactly the same samples: any difference is the query's, not the timing's.
The alert row reads the pack's ``ALERTS`` series (no scrape), so it is left out.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dash_lint as L
import dash_live
import pytest
from dash_live import Live

from binaries import require_binary
from livekit_agents_exporter import metrics as m
from livekit_agents_exporter.dashboard import COMMITTED_PATH
from livekit_agents_exporter.prometheus_runner import Prometheus, PrometheusAPIError

pytestmark = pytest.mark.slow

DASHBOARD = json.loads((Path(__file__).resolve().parents[2] / COMMITTED_PATH).read_text())
BUDGET_S = 90.0  # from the first scrape until every compared panel has data
RANGE_KINDS = ("timeseries", "heatmap", "state-timeline")
RANGE_S = 20  # range panels are compared over their last 20 one-second steps
# scrapes in the snapshot: several rate intervals, so rates and increases have samples
MIN_WINDOW_S = 20
REGISTERED = m.series("worker_registered")

Labels = dict[str, str]


class Duplication:
    """How worker series are read twice: the label sets of a series' two copies, for the
    workers ``only_some`` picks (all of them when False)."""

    def __init__(self, copies: Callable[[Labels], list[Labels]], only_some: bool) -> None:
        self.copies, self.only_some = copies, only_some


DUPLICATIONS = {
    # a PodMonitor and a ServiceMonitor with the same job label, the Service selecting
    # only some of the pods: those workers' series come twice, the ServiceMonitor's with
    # its service and endpoint labels. Only some, so that a share or a percentile of an
    # agent's fleet changes too when the workers read twice are not deduplicated.
    "podmonitor-and-servicemonitor": Duplication(lambda s: [
        s, {**s, "service": "livekit-agents", "endpoint": "metrics"}], only_some=True),
    # an HA pair read through a global view that does not deduplicate replicas: every series
    "ha-replicas": Duplication(lambda s: [{**s, "prometheus_replica": f"prometheus-k8s-{i}"}
                                          for i in (0, 1)], only_some=False),
}

COMPARED = [
    pytest.param(p["title"], t["refId"], t["expr"], p["type"] not in RANGE_KINDS,
                 id=f"{p['title']}[{t['refId']}]")
    for p, _, t in L.targets(DASHBOARD) if "ALERTS" not in t["expr"]
]


def _values(window_s: int) -> dict[str, str]:
    return {**dash_live.all_values(DASHBOARD), "__rate_interval": dash_live.RATE_INTERVAL,
            "__range": f"{window_s}s", "__interval": "1s"}


def _wait_for_data(live: Live) -> tuple[float, int]:
    """Until every compared query has data on the live Prometheus, over at least
    ``MIN_WINDOW_S`` of scrapes: the time it did and the window ($__range) it used."""
    pending = {(title, ref): expr for title, ref, expr, _ in (p.values for p in COMPARED)}
    while True:
        now = time.time()
        window_s = round(now - live.started)
        values = _values(max(1, window_s))
        for key, expr in list(pending.items()):
            if dash_live.finite(live.prom.query(dash_live.interpolate(expr, values), now)):
                del pending[key]
        if not pending and window_s >= MIN_WINDOW_S:
            return now, window_s
        if now > live.started + BUDGET_S:
            pytest.fail(f"no data after {BUDGET_S:.0f} s for {sorted(pending)}: nothing to "
                        f"compare")
        time.sleep(1)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _read_twice(series: list[dict[str, Any]], duplication: Duplication) -> set[str]:
    """The instances whose series come twice: all, or the first worker of every agent's
    fleet (cluster, namespace, agent_name) and so every worker of a one-worker fleet."""
    workers = sorted((s["metric"].get("cluster", ""), s["metric"].get("namespace", ""),
                      s["metric"].get("agent_name", ""), s["metric"]["instance"])
                     for s in series if s["metric"]["__name__"] == REGISTERED)
    if not duplication.only_some:
        return {w[3] for w in workers}
    first: dict[tuple[str, ...], str] = {}
    for *fleet, instance in workers:
        first.setdefault(tuple(fleet), instance)
    return set(first.values())


def _openmetrics(series: list[dict[str, Any]], duplication: Duplication | None) -> str:
    """OpenMetrics text of raw samples; the series of the workers read twice (job
    livekit-agents) doubled as ``duplication`` says, when given."""
    twice = _read_twice(series, duplication) if duplication else set()
    lines = []
    for s in series:
        labels = dict(s["metric"])
        name = labels.pop("__name__")
        copies = ([labels] if duplication is None or labels.get("job") != dash_live.JOB
                  or labels.get("instance") not in twice else duplication.copies(labels))
        for copy in copies:
            head = name + "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(copy.items()))
            lines += [f"{head}}} {value} {ts:.3f}" for ts, value in s["values"]]
    return "\n".join([*lines, "# EOF"]) + "\n"


def _load(text: str, workdir: Path, binary: str) -> Prometheus:
    """A Prometheus serving exactly these samples (no scrape)."""
    workdir.mkdir(parents=True)
    source = workdir / "samples.om"
    source.write_text(text)
    promtool = str(Path(binary).with_name("promtool"))
    done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                           str(source), str(workdir / "data")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"promtool could not load the samples: {done.stderr}"
    source.unlink()
    return Prometheus([], binary=binary, workdir=workdir).start()


class Snapshot:
    """The live samples loaded once as scraped and once per duplication."""

    def __init__(self, live: Live, workdir: Path) -> None:
        self.at, self.window_s = _wait_for_data(live)
        jobs = f"{dash_live.JOB}|{dash_live.SERVER_LOG_JOB}"
        self.series = live.prom.query(f'{{job=~"{jobs}"}}[{self.window_s + 60}s]', self.at)
        self.binary = require_binary("prometheus", "prometheus")
        self.workdir = workdir
        self._proms: dict[str | None, Prometheus] = {}

    def prometheus(self, duplication: str | None) -> Prometheus:
        if duplication not in self._proms:
            text = _openmetrics(self.series, DUPLICATIONS[duplication] if duplication else None)
            self._proms[duplication] = _load(text, self.workdir / (duplication or "once"),
                                             self.binary)
        return self._proms[duplication]

    def run(self, duplication: str | None, expr: str, instant: bool) -> list[dict[str, Any]]:
        query = dash_live.interpolate(expr, _values(self.window_s))
        prom = self.prometheus(duplication)
        try:
            if instant:
                return prom.query(query, self.at)
            return prom.query_range(query, self.at - RANGE_S, self.at, 1)
        except PrometheusAPIError as exc:
            pytest.fail(f"Prometheus refused {query}: {exc}")

    def close(self) -> None:
        for prom in self._proms.values():
            prom.stop()


@pytest.fixture(scope="module")
def snapshot(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snapshot]:
    snap = Snapshot(live, tmp_path_factory.mktemp("read-twice"))
    try:
        yield snap
    finally:
        snap.close()


def _by_series(result: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    out = {}
    for s in result:
        samples = s.get("values") or [s["value"]]
        key = json.dumps(s["metric"], sort_keys=True)
        out[key] = [(float(ts), float(v)) for ts, v in samples]
    return out


def _same(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    """Same steps and values: float sums may add in another order, NaN equals NaN."""
    return len(a) == len(b) and all(
        ta == tb and (math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-12)
                      or (math.isnan(va) and math.isnan(vb)))
        for (ta, va), (tb, vb) in zip(a, b, strict=True))


@pytest.mark.parametrize("duplication", list(DUPLICATIONS))
@pytest.mark.parametrize("title, ref, expr, instant", COMPARED)
def test_panel_is_the_same_when_every_worker_is_read_twice(
        title: str, ref: str, expr: str, instant: bool, duplication: str,
        snapshot: Snapshot) -> None:
    once = _by_series(snapshot.run(None, expr, instant))
    twice = _by_series(snapshot.run(duplication, expr, instant))
    assert once, (f"panel {title!r} query {ref} has no data in the snapshot "
                  f"({snapshot.window_s} s from the first scrape): nothing compared\n"
                  f"{dash_live.interpolate(expr, _values(snapshot.window_s))}")
    extra, missing = sorted(twice.keys() - once.keys()), sorted(once.keys() - twice.keys())
    assert not extra and not missing, (
        f"panel {title!r} query {ref}, every worker read twice ({duplication}): series "
        f"only when read twice {extra[:3]}, only when read once {missing[:3]}")
    differ = {k: (once[k][-1], twice[k][-1]) for k in once if not _same(once[k], twice[k])}
    assert not differ, (
        f"panel {title!r} query {ref}, every worker read twice ({duplication}): "
        f"{len(differ)} of {len(once)} series differ; (time, once) vs (time, twice), last "
        f"step: {dict(list(differ.items())[:3])}")

