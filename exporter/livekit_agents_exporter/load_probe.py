"""Wraps ``load_fnc`` to sample every value the SDK sees.

The SDK calls ``load_fnc`` every 0.5 s (and, from 1.4.5 on, before answering each offer) but
only reports it every 2.5 s; sampling each call into a histogram keeps the spikes
in between. The wrapper returns exactly what the user's function returned and
re-raises what it raised, so the worker behaves as it would without the exporter.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

from .errors import InstrumentationError
from .recorder import Recorder
from .safety import ErrorSink


def check_load_fnc(fn: object) -> None:
    """Refuse load functions the SDK would silently mishandle."""
    if not callable(fn):
        raise InstrumentationError(f"load_fnc must be a callable returning a float, got {fn!r}")
    target = fn if inspect.isroutine(fn) else type(fn).__call__  # a callable object's method
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(target):
        raise InstrumentationError(
            f"load_fnc {getattr(fn, '__qualname__', fn)!r} is declared 'async def'. The SDK runs "
            "load_fnc in a thread executor and never awaits it, so an async load_fnc silently "
            "stops the worker's load updates. Make it a plain 'def' returning a float in 0..1."
        )


def _takes_worker(fn: Callable[..., Any]) -> bool:
    """Mirror the SDK: no parameters -> ``fn()``, otherwise ``fn(worker)``."""
    try:
        return len(inspect.signature(fn).parameters) > 0
    except (TypeError, ValueError):
        return True


# Both SDK generations run ``inspect.signature(load_fnc)`` on every call, to decide whether
# to pass the worker. For a callable object that walks ``type(obj).__call__`` (9 us against
# 4 us for a plain function); a ready ``__signature__`` is returned as is (1 us).
_SIGNATURE = inspect.Signature(
    [inspect.Parameter("worker", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)])


class ObservedLoadFnc:
    """A load function that records each sample; has one parameter so the SDK passes the worker."""

    def __init__(self, fn: Callable[..., float], recorder: Recorder, errors: ErrorSink) -> None:
        check_load_fnc(fn)
        self.__signature__ = _SIGNATURE
        self.wrapped = fn
        self._takes_worker = _takes_worker(fn)
        self._recorder = recorder
        self._errors = errors
        self._observing = True

    def stop_observing(self) -> None:
        """From now on only call the user's function (``Exporter.close()``)."""
        self._observing = False

    def __call__(self, worker: Any = None) -> float:
        if not self._observing:
            return self.wrapped(worker) if self._takes_worker else self.wrapped()
        start = time.perf_counter()
        try:
            value = self.wrapped(worker) if self._takes_worker else self.wrapped()
        except BaseException:
            with self._errors.guard("load_fnc"):
                self._recorder.load_fnc_raised(time.perf_counter() - start)
            raise
        # not ``with guard()``: the executor thread runs this with cold caches, where every
        # extra call and object showed up in the worker's CPU (benchmarks/)
        try:
            self._recorder.load_sampled(value, time.perf_counter() - start)
        except Exception:
            self._errors.report("load_fnc")
        return value

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled into another process (1.2 dev-mode reload): the exporter stays behind
        return (_unwrapped, (self.wrapped,))

    def __repr__(self) -> str:
        return f"ObservedLoadFnc({self.wrapped!r})"


def _unwrapped(fn: Callable[..., Any]) -> Callable[..., Any]:
    return fn
