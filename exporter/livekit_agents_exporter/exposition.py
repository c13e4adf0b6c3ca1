"""Renders ``/metrics``: the bytes prometheus_client's encoders produce, built faster.

prometheus_client rebuilds every sample line from scratch on every scrape, and for the
escaping Prometheus 2.x negotiates its OpenMetrics encoder rewrites every sample name
character by character; rendering a worker's ~125 series took about 1 ms of the worker
process's CPU per scrape, more than the whole scrape of the SDK's own endpoint
(benchmarks/). A worker's series are a fixed set, so the renderer below keeps each
family's header and each series' ``name{labels} `` prefix and only formats the values.

The output is byte-for-byte what the library's encoder would return (tested). Whatever
the cache does not cover (timestamps, exemplars, native histograms, metric or label
names outside the classic ``[a-zA-Z_][a-zA-Z0-9_]*`` set, OpenMetrics-only samples in
the classic text format, an encoder this module does not recognise) is rendered by the
library's encoder instead, for the whole scrape.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import exposition as text_exposition
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


class Renderer:
    """Renders a registry in one format, caching the parts that do not change."""

    def __init__(self, openmetrics: bool, fallback: Encoder) -> None:
        self.openmetrics = openmetrics
        self.fallback = fallback
        self._headers: dict[tuple[Any, ...], str] = {}
        self._prefixes: dict[tuple[Any, ...], str] = {}
        self._lock = threading.Lock()

    def __call__(self, registry: Any) -> bytes:
        try:
            return self._render(registry)
        except _Unsupported:
            return self.fallback(registry)

    def _render(self, registry: Any) -> bytes:
        headers, prefixes = self._headers, self._prefixes
        if len(prefixes) > MAX_CACHED:  # a registry whose label values keep changing
            with self._lock:
                prefixes.clear()
                headers.clear()
        out: list[str] = []
        append = out.append
        for metric in registry.collect():
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
                append(floatToGoString(s.value))
                append("\n")
        if self.openmetrics:
            append("# EOF\n")
        return "".join(out).encode("utf-8")

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
