"""Notices job entrypoints that raise, even in job processes.

An entrypoint that raises is still reported ``JS_SUCCESS`` on the wire, and under the
process executor it runs in another process. The wrapper below travels to the job
process with the entrypoint (it is picklable and holds nothing else), and on an
exception emits one log record on a dedicated logger. The SDK already forwards
every job-process log record to the worker process, where ``JobEventHandler``
turns it into ``livekit_agents_jobs_failed_total{reason="entrypoint_error"}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .recorder import Recorder
from .safety import ErrorSink

EVENTS_LOGGER = "livekit_agents_exporter.job_events"
_EVENT_FIELD = "lk_exporter_event"
_JOB_FIELD = "lk_exporter_job_id"


class ObservedEntrypoint:
    """The user's entrypoint, unchanged, plus one log record when it raises."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.wrapped = fn

    async def __call__(self, ctx: Any) -> Any:
        try:
            return await self.wrapped(ctx)
        except asyncio.CancelledError:
            raise
        except BaseException:
            _emit_failure(ctx)
            raise

    def __repr__(self) -> str:
        return f"ObservedEntrypoint({self.wrapped!r})"


def _emit_failure(ctx: Any) -> None:
    try:
        events = logging.getLogger(EVENTS_LOGGER)
        # in a job process the level is inherited from the SDK's setup: force ours
        events.setLevel(logging.INFO)
        events.info(
            "job entrypoint raised",
            extra={_EVENT_FIELD: "entrypoint_error", _JOB_FIELD: ctx.job.id},
        )
    except Exception:  # pragma: no cover - never let reporting hide the user's error
        pass


class JobEventHandler(logging.Handler):
    """Receives the job-process records in the worker process."""

    def __init__(self, recorder: Recorder, errors: ErrorSink) -> None:
        super().__init__(level=logging.INFO)
        self._recorder = recorder
        self._errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        with self._errors.guard("job_events"):
            if getattr(record, _EVENT_FIELD, None) != "entrypoint_error":
                return
            self._recorder.entrypoint_failed(str(getattr(record, _JOB_FIELD)))


def install_job_event_handler(handler: JobEventHandler) -> None:
    events = logging.getLogger(EVENTS_LOGGER)
    events.setLevel(logging.INFO)
    events.propagate = False  # our records are signals, not log lines for the user
    events.addHandler(handler)


def remove_job_event_handler(handler: JobEventHandler) -> None:
    logging.getLogger(EVENTS_LOGGER).removeHandler(handler)
