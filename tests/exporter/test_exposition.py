"""The fast /metrics renderer returns exactly the bytes prometheus_client would."""

from __future__ import annotations

import math
from typing import Any

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    enable_created_metrics,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
    StateSetMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.exposition import choose_encoder as library_choose_encoder

from livekit_agents_exporter import exposition
from livekit_agents_exporter.exposition import GuardedRegistry, Renderer, choose_encoder
from livekit_agents_exporter.recorder import Recorder
from livekit_agents_exporter.safety import ErrorSink

ACCEPT_HEADERS = [
    # Prometheus 2.x
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
    "application/openmetrics-text",
    "text/plain;version=0.0.4",
    "text/plain;version=1.0.0",
    "",
    "*/*",
]


class Frozen:
    """A registry that returns the same collected families every time."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self):
        return iter(self.metrics)


class Tricky:
    """Families of every type, with values and label values that need care."""

    def collect(self):
        g = GaugeMetricFamily("tricky_gauge", 'help with "quotes", a \\ and a\nnewline',
                              labels=["path", "z_label", "a_label"])
        g.add_metric(['C:\\dir "x"\nnext', "zz", "aa"], 1e21)
        g.add_metric(["ünïcödé", "", "a"], -0.0)
        g.add_metric(["inf", "b", "c"], math.inf)
        g.add_metric(["-inf", "b", "c"], -math.inf)
        g.add_metric(["nan", "b", "c"], math.nan)
        g.add_metric(["small", "b", "c"], 1.5e-7)
        g.add_metric(["big", "b", "c"], 123456789.0)
        yield g
        yield CounterMetricFamily("tricky_requests", "requests", value=3)
        h = HistogramMetricFamily("tricky_seconds", "latency", labels=["route"])
        h.add_metric(["/"], buckets=[("0.1", 1), ("1.0", 3), ("+Inf", 4)], sum_value=2.5)
        yield h
        s = SummaryMetricFamily("tricky_summary", "summary", count_value=2, sum_value=1.0)
        yield s
        yield InfoMetricFamily("tricky_build", "build", value={"version": "1.2.3"})
        yield StateSetMetricFamily("tricky_state", "state", value={"a": True, "b": False})
        yield Metric("tricky_unknown", "untyped thing", "unknown")
        yield GaugeMetricFamily("tricky_empty", "no samples", labels=["x"])


def populated_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(Tricky())
    recorder = Recorder(registry, ErrorSink())
    recorder.bind("agent \"x\"", {"worker_type": "JT_ROOM", "sdk_version": "1.8.9",
                                  "exporter_version": "0.1.0"},
                  {"worker_active_jobs": lambda: 3.0})
    for i in range(20):
        job = f"AJ_{i}"
        recorder.request_received(job)
        recorder.answer_sent(job, i % 3 != 0, draining=False)
        recorder.assignment_received(job)
        recorder.job_running(job)
        recorder.job_ended(job, process_failed=i == 5)
        recorder.load_sampled(i / 20, 1e-4)
    return registry


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
def test_same_bytes_and_content_type_as_prometheus_client(accept: str) -> None:
    frozen = Frozen(list(populated_registry().collect()))
    library, library_type = library_choose_encoder(accept)
    fast, fast_type = choose_encoder(accept)
    assert fast_type == library_type
    first = fast(frozen)
    assert first == library(frozen)
    assert fast(frozen) == first  # from the cache


def test_prometheus_2_gets_the_fast_renderer() -> None:
    fast, _ = choose_encoder(ACCEPT_HEADERS[0])
    assert isinstance(fast, Renderer) and fast.openmetrics


def test_values_change_between_scrapes() -> None:
    registry = CollectorRegistry()
    recorder = Recorder(registry, ErrorSink())
    recorder.bind("a", {"worker_type": "JT_ROOM", "sdk_version": "x", "exporter_version": "y"},
                  {})
    for accept in ACCEPT_HEADERS:
        library, _ = library_choose_encoder(accept)
        fast, _ = choose_encoder(accept)
        for i in range(3):
            recorder.load_sampled(i / 4, 1e-3)
            recorder.request_received(f"{accept}-{i}")
            assert fast(registry) == library(registry)


def _with_sample(**changes: object) -> Frozen:
    metric = GaugeMetricFamily("plain", "plain gauge", labels=["l"])
    metric.add_metric(["v"], 1.0)
    metric.samples[0] = metric.samples[0]._replace(**changes)
    return Frozen([metric])


@pytest.mark.parametrize("registry", [
    _with_sample(timestamp=1234.5),
    _with_sample(name="plain:colon"),
    _with_sample(labels={"ünicode": "v"}),
    Frozen([CounterMetricFamily("made", "with created", value=1, created=1700000000.0)]),
    Frozen([GaugeMetricFamily("bad:name", "a name with a colon", value=1)]),
], ids=["timestamp", "colon in sample name", "utf-8 label name", "_created sample",
        "colon in family name"])
@pytest.mark.parametrize("accept", ["text/plain", ACCEPT_HEADERS[0]])
def test_what_the_cache_does_not_cover_falls_back_to_the_library(registry: Frozen,
                                                                 accept: str) -> None:
    library, _ = library_choose_encoder(accept)
    fast, _ = choose_encoder(accept)
    assert fast(registry) == library(registry)


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exposition, "MAX_CACHED", 5)
    library, _ = library_choose_encoder("text/plain")
    renderer = Renderer(False, library)
    for i in range(30):
        metric = GaugeMetricFamily("churn", "label values that never repeat", labels=["id"])
        metric.add_metric([str(i)], float(i))
        frozen = Frozen([metric])
        assert renderer(frozen) == library(frozen)
        assert len(renderer._prefixes) <= 6


# -- metric objects read directly (the exporter's own Counter/Gauge/Histogram families) ---------
@pytest.fixture
def no_created_series():
    """As instrument() sets it; the direct read only covers metrics without ``_created``."""
    disable_created_metrics()
    yield
    enable_created_metrics()


def live_registry() -> tuple[CollectorRegistry, Recorder, dict[str, Any]]:
    registry = CollectorRegistry()
    recorder = Recorder(registry, ErrorSink())
    recorder.bind('agent "x"\\n', {"worker_type": "JT_ROOM", "sdk_version": "1.8.9",
                                    "exporter_version": "0.1.0"},
                  {"worker_active_jobs": lambda: 3.0})
    extra = {
        "gauge": Gauge("edge_values", "values that need care", ["case"], registry=registry),
        "negative": Histogram("signed_delta", "negative buckets: no _sum", ["side"],
                              buckets=(-1.0, 0.0, 1.0), registry=registry),
        "counter": Counter("plain_events", "unlabelled counter", registry=registry),
        "fn": Gauge("from_function", "set_function children", ["name"], registry=registry),
        "info": Info("build", "an Info family, collected the library's way", registry=registry),
    }
    for case, value in {"nzero": -0.0, "nan": math.nan, "inf": math.inf, "ninf": -math.inf,
                        "big": 1e21, "tiny": 1.5e-7, "huge_int": 123456789.0}.items():
        extra["gauge"].labels(case).set(value)
    extra["negative"].labels("l").observe(-0.5)
    extra["counter"].inc(2)
    extra["fn"].labels("seven").set_function(lambda: 7)
    extra["info"].info({"version": "1.2.3"})
    return registry, recorder, extra


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
def test_direct_read_gives_the_library_bytes_as_values_move(accept: str, no_created_series) -> None:
    registry, recorder, extra = live_registry()
    library, _ = library_choose_encoder(accept)
    fast, _ = choose_encoder(accept)
    for i in range(5):
        recorder.request_received(f"AJ_{i}")
        recorder.answer_sent(f"AJ_{i}", i % 2 == 0, draining=False)
        recorder.load_sampled(i / 7, 1e-4)
        extra["negative"].labels("r").observe(i - 2.5)
        extra["gauge"].labels("moving").set(i * 1e6)
        assert fast(registry) == library(registry)
    assert isinstance(fast, Renderer) and fast._children, "the direct read was not used"


def test_created_series_enabled_still_gives_the_library_bytes() -> None:
    registry, recorder, _ = live_registry()
    recorder.request_received("AJ_1")
    for accept in ACCEPT_HEADERS:
        library, _ = library_choose_encoder(accept)
        fast, _ = choose_encoder(accept)
        assert fast(registry) == library(registry)


def test_exemplar_falls_back_to_the_library(no_created_series) -> None:
    registry, _, extra = live_registry()
    extra["counter"].inc(1, exemplar={"trace_id": "abc"})
    accept = "application/openmetrics-text"
    library, _ = library_choose_encoder(accept)
    fast, _ = choose_encoder(accept)
    body = fast(registry)
    assert body == library(registry) and b"trace_id" in body


def test_raising_function_gauge_drops_its_family_only(no_created_series) -> None:
    registry, _, extra = live_registry()
    extra["fn"].labels("broken").set_function(lambda: 1 / 0)
    reported: list[str] = []
    fast, _ = choose_encoder("text/plain")
    body = fast(GuardedRegistry(registry, reported.append)).decode()
    assert reported == ["collector"]
    assert "from_function" not in body and "plain_events_total 2.0" in body
    with pytest.raises(ZeroDivisionError):  # unguarded, as the library would
        fast(registry)


def test_changed_library_internals_fall_back_for_good(no_created_series,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    registry, _, extra = live_registry()
    library, _ = library_choose_encoder("text/plain")
    renderer = Renderer(False, library)
    child = extra["gauge"].labels("nan")
    monkeypatch.delattr(child._value, "_exemplar")  # as if a release renamed it
    assert renderer(registry) == library(registry)
    assert renderer._direct is False
    monkeypatch.undo()
    assert renderer(registry) == library(registry)
