"""Taps the worker's protocol traffic, so counters equal what crossed the wire.

Incoming server messages are dispatched to ``_handle_register``,
``_handle_availability`` and ``_handle_assignment``; every outgoing message goes
through ``_queue_msg``. Both SDK generations share these names. Each tap records,
then calls the original unchanged; the recording is guarded so it can never fail
the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livekit.protocol import agent as proto

from .recorder import Recorder
from .safety import ErrorSink
from .sdk import WorkerView

_JOB_STATUS = {
    proto.JobStatus.JS_RUNNING: "running",
    proto.JobStatus.JS_SUCCESS: "success",
    proto.JobStatus.JS_FAILED: "failed",
}


class WireTap:
    """Installs and removes the taps on one worker instance."""

    def __init__(self, view: WorkerView, recorder: Recorder, errors: ErrorSink) -> None:
        self._view = view
        self._recorder = recorder
        self._errors = errors
        self._originals: dict[str, Callable[..., Any]] = {}

    def install(self) -> None:
        self._wrap("_handle_register", self._before_register)
        self._wrap("_handle_availability", self._before_availability)
        self._wrap("_handle_assignment", self._before_assignment)
        # ``_queue_msg`` is a coroutine function that every caller awaits at once: a plain
        # wrapper returning its coroutine saves a coroutine and a frame per message
        self._wrap("_queue_msg", self._before_send)
        self._wrap_connection("_run_ws")

    def uninstall(self) -> None:
        worker = self._view.worker
        for name in self._originals:
            worker.__dict__.pop(name, None)
        self._originals.clear()

    # -- installation helpers ------------------------------------------------------
    def _wrap(self, name: str, before: Callable[[Any], None]) -> None:
        original = getattr(self._view.worker, name)
        self._originals[name] = original
        report = self._errors.report

        def tapped(msg: Any, *args: Any, **kwargs: Any) -> Any:
            try:  # not ``with guard()``: one object less per message on the worker's path
                before(msg)
            except Exception:
                report("wire")
            return original(msg, *args, **kwargs)

        setattr(self._view.worker, name, tapped)

    def _wrap_connection(self, name: str) -> None:
        """A registered connection lasts as long as ``_run_ws`` runs."""
        original = getattr(self._view.worker, name)
        self._originals[name] = original
        recorder, guard = self._recorder, self._errors.guard

        async def tapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return await original(*args, **kwargs)
            finally:
                with guard("connection"):
                    recorder.disconnected()

        setattr(self._view.worker, name, tapped)

    # -- what each tap records -----------------------------------------------------
    def _before_register(self, _msg: Any) -> None:
        self._recorder.registered()

    def _before_availability(self, msg: Any) -> None:
        self._recorder.request_received(msg.job.id)

    def _before_assignment(self, msg: Any) -> None:
        self._recorder.assignment_received(msg.job.id)

    def _before_send(self, msg: Any) -> None:
        which = msg.WhichOneof("message")
        if which == "availability":
            answer = msg.availability
            self._recorder.answer_sent(answer.job_id, answer.available, self._view.draining())
        elif which == "update_worker":
            self._recorder.status_reported(msg.update_worker.status == proto.WorkerStatus.WS_FULL)
        elif which == "update_job":
            status = _JOB_STATUS.get(msg.update_job.status)
            if status == "running":
                self._recorder.job_running(msg.update_job.job_id)
            elif status is not None:
                self._recorder.job_ended(msg.update_job.job_id, process_failed=status == "failed")
