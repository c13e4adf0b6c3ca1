"""Notices job entrypoints that raise, even in job processes.

An entrypoint that raises is still reported ``JS_SUCCESS`` on the wire, and under the
process executor it runs in another process. The wrapper below travels to the job
process with the entrypoint (it is picklable and holds nothing else) and, on an
exception, sends one job event to the worker process over the channel ``sdk.py`` builds
on the SDK's log forwarding; there ``job_failure_channel`` turns it into
``livekit_agents_jobs_failed_total{reason="entrypoint_error"}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from . import sdk
from .recorder import Recorder
from .safety import ErrorSink

ENTRYPOINT_ERROR = "entrypoint_error"


class ObservedEntrypoint:
    """The user's entrypoint, unchanged, plus one job event when it raises."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.wrapped = fn

    async def __call__(self, ctx: Any) -> Any:
        try:
            return await self.wrapped(ctx)
        except asyncio.CancelledError:
            raise
        except BaseException:
            _report_failure(ctx)
            raise

    def __repr__(self) -> str:
        return f"ObservedEntrypoint({self.wrapped!r})"


def _report_failure(ctx: Any) -> None:
    try:
        sdk.send_job_event(ENTRYPOINT_ERROR, str(ctx.job.id))
    except Exception:  # pragma: no cover - never let reporting hide the user's error
        pass


def job_failure_channel(recorder: Recorder, errors: ErrorSink) -> sdk.JobEventChannel:
    """The worker process's end: entrypoint errors of every job, counted by ``recorder``."""

    def receive(event: str, job_id: str) -> None:
        if event == ENTRYPOINT_ERROR:
            recorder.entrypoint_failed(job_id)

    return sdk.JobEventChannel(receive, lambda: errors.report("job_events"))
