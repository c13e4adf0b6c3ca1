"""Keeps the exporter's own failures out of the worker it observes.

Every hook the exporter installs runs its bookkeeping inside ``guard``: an error is
counted in ``livekit_agents_exporter_errors_total{component}``, logged (rate limited,
so a persistent bug cannot flood the worker's logs) and swallowed.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType

logger = logging.getLogger("livekit_agents_exporter")

_LOG_EVERY_S = 60.0


class ErrorSink:
    """Counts and logs exporter-internal errors; the counter is bound later by the recorder."""

    def __init__(self) -> None:
        self._count: Callable[[str], None] = lambda component: None
        self._last_logged: dict[str, float] = {}
        self._lock = threading.Lock()

    def bind(self, count: Callable[[str], None]) -> None:
        self._count = count

    def count(self, component: str) -> None:
        """Count a failure that its caller logs itself."""
        try:
            self._count(component)
        except Exception:  # pragma: no cover - the counter itself failing
            pass

    def report(self, component: str, detail: str = "") -> None:
        try:
            self._count(component)
        except Exception:  # pragma: no cover - the counter itself failing
            pass
        where = f"{component} ({detail})" if detail else component
        now = time.monotonic()
        with self._lock:
            last = self._last_logged.get(where)
            if last is not None and now - last < _LOG_EVERY_S:
                return
            self._last_logged[where] = now
        logger.warning(
            "livekit-agents-exporter: internal error in %s (the worker is unaffected)",
            where,
            exc_info=sys.exc_info()[0] is not None,  # a report from the endpoint has none
        )

    def guard(self, component: str) -> _Guard:
        """``with sink.guard("name"):`` counts, logs and swallows an ``Exception`` inside."""
        return _Guard(self, component)


class _Guard:
    """The context manager behind ``ErrorSink.guard``.

    A class rather than ``@contextmanager``: every hook enters one on the worker's hot
    path, and a generator-based one costs several times more per use (benchmarks/).
    """

    __slots__ = ("_sink", "_component")

    def __init__(self, sink: ErrorSink, component: str) -> None:
        self._sink = sink
        self._component = component

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc_type is not None and issubclass(exc_type, Exception):
            self._sink.report(self._component)
            return True
        return False
