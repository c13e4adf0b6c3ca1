"""Renders ``/metrics``: the bytes prometheus_client's encoders produce, built faster.

prometheus_client rebuilds every sample line from scratch on every scrape, and for the
escaping Prometheus 2.x negotiates its OpenMetrics encoder rewrites every sample name
character by character; rendering a worker's ~125 series took about 1 ms of the worker
process's CPU per scrape, more than the whole scrape of the SDK's own endpoint
(benchmarks/). A worker's series are a fixed set, so the renderer below keeps each
family's header and each series' ``name{labels} `` prefix and only formats the values.

Collecting cost as much again: the library builds a sample tuple and a label dict per
series before any encoder sees them. For the plain labelled Counter, Gauge and Histogram
objects the exporter's own metrics are, the renderer reads the children's values
directly; every other collector goes through ``collect()``.

The output is byte-for-byte what the library's encoder would return (tested). Whatever
the cache does not cover (timestamps, exemplars, native histograms, metric or label
names outside the classic ``[a-zA-Z_][a-zA-Z0-9_]*`` set, OpenMetrics-only samples in
the classic text format, an encoder this module does not recognise) is rendered by the
library's encoder instead, for the whole scrape.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client import exposition as text_exposition
from prometheus_client import metrics as client_metrics
from prometheus_client import values as client_values
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.utils import floatToGoString

Encoder = Callable[[Any], bytes]

_CLASSIC_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_UNDERSCORES = getattr(om_exposition, "UNDERSCORES", "underscores")
_ALLOWUTF8 = getattr(om_exposition, "ALLOWUTF8", "allow-utf-8")
_SAME_FOR_CLASSIC_NAMES = (_UNDERSCORES, _ALLOWUTF8)  # escapings that leave such names alone
_OM_ONLY_SUFFIXES = ("_created", "_gsum", "_gcount")
_TEXT_TYPES = {"stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}
MAX_CACHED = 20_000


class _Unsupported(Exception):
    """Something the fast path does not render exactly like the library: fall back."""


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def registered_collectors(registry: Any) -> list[Any] | None:
    """The collectors of a prometheus_client registry, in order; None for anything else."""
    lock = getattr(registry, "_lock", None)
    names = getattr(registry, "_collector_to_names", None)
    if lock is None or names is None:
        return None
    with lock:
        return list(names)


class GuardedRegistry:
    """A registry as the endpoint serves it: a collector that raises is left out of that
    scrape and reported, instead of failing the whole scrape."""

    def __init__(self, registry: Any, on_error: Callable[[str], None]) -> None:
        self.registry = registry
        self.report = on_error

    def collect(self) -> Iterator[Any]:
        collectors = registered_collectors(self.registry)
        if collectors is None:  # no per-collector guard possible
            yield from self.registry.collect()
            return
        for collector in collectors:
            try:
                families = list(collector.collect())
            except Exception:
                self.report("collector")
                continue
            yield from families


def _plain_children(collector: Any) -> list[tuple[Any, Any]] | None:
    """The (label values, child) pairs of a labelled Counter, Gauge or Histogram whose
    samples are exactly what the renderer writes itself, else None."""
    kind = type(collector)
    if kind not in _DIRECT_KINDS:
        return None
    if getattr(client_values, "ValueClass", None) is not getattr(client_values, "MutexValue", 0):
        return None  # multiprocess mode: values live in files
    if getattr(client_metrics, "_use_created", True) and kind is not Gauge:
        return None
    if not collector._labelnames or collector._labelvalues:  # unlabelled, or itself a child
        return None
    with collector._lock:
        return list(collector._metrics.items())


_DIRECT_KINDS = (Counter, Gauge, Histogram)
_MAX_FORMATTED = 4096


class Renderer:
    """Renders a registry in one format, caching the parts that do not change."""

    def __init__(self, openmetrics: bool, fallback: Encoder) -> None:
        self.openmetrics = openmetrics
        self.fallback = fallback
        self._headers: dict[tuple[Any, ...], str] = {}
        self._prefixes: dict[tuple[Any, ...], str] = {}
        self._children: dict[Any, list[str]] = {}  # a metric child -> its lines' prefixes
        self._formatted: dict[float, str] = {}
        self._direct = True
        self._lock = threading.Lock()

    def __call__(self, registry: Any) -> bytes:
        try:
            return self._render(registry)
        except _Unsupported:
            return self.fallback(registry)

    def _render(self, registry: Any) -> bytes:
        if len(self._prefixes) + len(self._children) > MAX_CACHED:  # label values that churn
            with self._lock:
                self._prefixes.clear()
                self._headers.clear()
                self._children.clear()
        if len(self._formatted) > _MAX_FORMATTED:
            self._formatted.clear()
        out: list[str] = []
        # a GuardedRegistry leaves out a collector that raises; anything else fails the scrape
        # on it, as the library's encoders do
        guarded = isinstance(registry, GuardedRegistry)
        collectors = registered_collectors(registry.registry if guarded else registry)
        if collectors is None:
            self._families(registry.collect(), out)
        else:
            for collector in collectors:
                mark = len(out)
                try:
                    self._collector(collector, out)
                except _Unsupported:
                    raise
                except Exception:
                    if not guarded:
                        raise
                    del out[mark:]
                    registry.report("collector")
        if self.openmetrics:
            out.append("# EOF\n")
        return "".join(out).encode("utf-8")

    def _collector(self, collector: Any, out: list[str]) -> None:
        children = _plain_children(collector) if self._direct else None
        if children is None:
            self._families(collector.collect(), out)
            return
        try:
            self._children_of(collector, children, out)
        except (AttributeError, TypeError, IndexError):
            # prometheus_client's internals changed shape: collect() from now on
            self._direct = False
            raise _Unsupported from None

    def _families(self, families: Iterable[Any], out: list[str]) -> None:
        headers, prefixes, value_str = self._headers, self._prefixes, self._value_str
        append = out.append
        for metric in families:
            hkey = (metric.name, metric.type, metric.documentation, metric.unit)
            header = headers.get(hkey)
            if header is None:
                header = headers[hkey] = self._header(metric)
            append(header)
            om_only = None if self.openmetrics else {metric.name + s for s in _OM_ONLY_SUFFIXES}
            for s in metric.samples:
                if s.value is None or s.timestamp is not None or s.exemplar is not None or getattr(
                        s, "native_histogram", None) is not None:
                    raise _Unsupported
                labels = s.labels
                key = (s.name, *labels.items()) if labels else (s.name,)
                prefix = prefixes.get(key)
                if prefix is None:
                    if om_only is not None and s.name in om_only:
                        raise _Unsupported
                    prefix = prefixes[key] = self._prefix(s.name, labels)
                append(prefix)
                append(value_str(s.value))
                append("\n")

    def _children_of(self, collector: Any, children: list[tuple[Any, Any]],
                     out: list[str]) -> None:
        """One family straight from the metric's children (see _plain_children)."""
        name, kind = collector._name, collector._type
        hkey = (name, kind, collector._documentation, collector._unit)
        header = self._headers.get(hkey)
        if header is None:
            header = self._headers[hkey] = self._header(collector._get_metric())
        out.append(header)
        cache, value_str, append = self._children, self._value_str, out.append
        for labelvalues, child in children:
            prefixes = cache.get(child)
            if prefixes is None:
                prefixes = cache[child] = self._child_prefixes(collector, labelvalues, child)
            if kind == "histogram":
                buckets = child._buckets
                acc = 0.0
                for prefix, bucket in zip(prefixes, buckets):
                    if bucket._exemplar is not None:
                        raise _Unsupported
                    acc += bucket.get()
                    append(prefix)
                    append(value_str(acc))
                    append("\n")
                append(prefixes[len(buckets)])  # _count
                append(value_str(acc))
                append("\n")
                if len(prefixes) > len(buckets) + 1:  # _sum, absent with negative buckets
                    append(prefixes[-1])
                    append(value_str(child._sum.get()))
                    append("\n")
                continue
            custom = child.__dict__.get("_child_samples")  # Gauge.set_function
            if custom is not None:
                value = custom()[0].value
            else:
                if child._value._exemplar is not None:
                    raise _Unsupported
                value = child._value.get()
            append(prefixes[0])
            append(value_str(value))
            append("\n")

    def _child_prefixes(self, collector: Any, labelvalues: tuple[str, ...],
                        child: Any) -> list[str]:
        name = collector._name
        labels = dict(zip(collector._labelnames, labelvalues))
        if collector._type == "counter":
            return [self._prefix(name + "_total", labels)]
        if collector._type == "gauge":
            return [self._prefix(name, labels)]
        prefixes = [self._prefix(name + "_bucket", {**labels, "le": floatToGoString(bound)})
                    for bound in child._upper_bounds]
        prefixes.append(self._prefix(name + "_count", labels))
        if child._upper_bounds[0] >= 0:
            prefixes.append(self._prefix(name + "_sum", labels))
        return prefixes

    def _value_str(self, value: float) -> str:
        """floatToGoString, remembered: a worker's values repeat (counts, 0, 1, thresholds)."""
        if value == 0.0:  # 0.0 and -0.0 are one dict key but two strings
            return "0.0" if math.copysign(1.0, value) > 0 else "-0.0"
        text = self._formatted.get(value)
        if text is None:
            text = self._formatted[value] = floatToGoString(value)
        return text

    def _header(self, metric: Any) -> str:
        name, mtype = metric.name, metric.type
        if not self.openmetrics:
            if mtype == "counter":
                name += "_total"
            elif mtype == "info":
                name, mtype = name + "_info", "gauge"
            else:
                mtype = _TEXT_TYPES.get(mtype, mtype)
        if not _CLASSIC_NAME.match(name):
            raise _Unsupported
        doc = metric.documentation
        if self.openmetrics:
            header = f"# HELP {name} {_escape_value(doc)}\n# TYPE {name} {mtype}\n"
            if metric.unit:
                header += f"# UNIT {name} {metric.unit}\n"
            return header
        doc = doc.replace("\\", r"\\").replace("\n", r"\n")
        return f"# HELP {name} {doc}\n# TYPE {name} {mtype}\n"

    @staticmethod
    def _prefix(name: str, labels: dict[str, str]) -> str:
        if not _CLASSIC_NAME.match(name) or not all(_CLASSIC_NAME.match(k) for k in labels):
            raise _Unsupported
        if not labels:
            return f"{name} "
        inner = ",".join(f'{k}="{_escape_value(v)}"' for k, v in sorted(labels.items()))
        return f"{name}{{{inner}}} "


_RENDERERS: dict[tuple[bool, str], Renderer] = {}
_RENDERERS_LOCK = threading.Lock()


def _renderer(openmetrics: bool, escaping: str, fallback: Encoder) -> Renderer:
    key = (openmetrics, escaping)
    with _RENDERERS_LOCK:
        renderer = _RENDERERS.get(key)
        if renderer is None:
            renderer = _RENDERERS[key] = Renderer(openmetrics, fallback)
        return renderer


def choose_encoder(accept_header: str) -> tuple[Encoder, str]:
    """Like ``prometheus_client.exposition.choose_encoder``, with the fast renderer when
    it is known to produce the same bytes as the encoder the library picked."""
    encoder, content_type = text_exposition.choose_encoder(accept_header)
    func = encoder.func if isinstance(encoder, functools.partial) else encoder
    keywords = encoder.keywords if isinstance(encoder, functools.partial) else {}
    if set(keywords) - {"escaping", "version"} or encoder is not func and encoder.args:
        return encoder, content_type
    escaping = keywords.get("escaping", _UNDERSCORES)
    version = str(keywords.get("version", "1.0.0"))
    if escaping not in _SAME_FOR_CLASSIC_NAMES:
        return encoder, content_type
    if func is om_exposition.generate_latest and version.startswith("1."):
        return _renderer(True, escaping, encoder), content_type
    if func is text_exposition.generate_latest:
        return _renderer(False, escaping, encoder), content_type
    return encoder, content_type
