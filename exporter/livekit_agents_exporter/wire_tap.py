"""Taps the worker's protocol traffic, so counters equal what crossed the wire.

Incoming server messages are dispatched to one handler method per message type, and
every outgoing message goes through one queueing method (``sdk.PROTOCOL_METHODS`` names
them). Each tap records, then calls the original unchanged; the recording is guarded so
it can never fail the call, and each tap attaches on its own (``hooks.py``). Status
reports the SDK drops while reconnecting never reach the server, so they are not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livekit.protocol import agent as proto

from . import sdk
from .hooks import Hooks
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
        self._worker = view.worker

    def install(self, hooks: Hooks) -> None:
        hooks.attach("register", lambda: self._wrap("register", self._before_register))
        hooks.attach("availability", lambda: self._wrap("availability", self._before_availability))
        hooks.attach("assignment", lambda: self._wrap("assignment", self._before_assignment))
        # the queueing method is a coroutine function that every caller awaits at once: a
        # plain wrapper returning its coroutine saves a coroutine and a frame per message
        hooks.attach("outgoing", lambda: self._wrap("outgoing", self._before_send))
        hooks.attach("connection", lambda: self._wrap_connection("connection"))

    def uninstall(self) -> None:
        worker = self._view.worker
        for name in self._originals:
            sdk.restore_method(worker, name)
        self._originals.clear()

    # -- installation helpers ------------------------------------------------------
    def _wrap(self, hook: str, before: Callable[[Any], None]) -> None:
        name, original = sdk.protocol_method(self._view.worker, hook)
        self._originals[name] = original
        report = self._errors.report

        def tapped(msg: Any, *args: Any, **kwargs: Any) -> Any:
            try:  # not ``with guard()``: one object less per message on the worker's path
                before(msg)
            except Exception:
                report("wire")
            return original(msg, *args, **kwargs)

        sdk.replace_method(self._view.worker, name, tapped)

    def _wrap_connection(self, hook: str) -> None:
        """A registered connection lasts as long as the connection method runs."""
        name, original = sdk.protocol_method(self._view.worker, hook)
        self._originals[name] = original
        recorder, guard = self._recorder, self._errors.guard

        async def tapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return await original(*args, **kwargs)
            finally:
                with guard("connection"):
                    recorder.disconnected()

        sdk.replace_method(self._view.worker, name, tapped)

    # -- what each tap records -----------------------------------------------------
    def _before_register(self, _msg: Any) -> None:
        self._recorder.registered()

    def _before_availability(self, msg: Any) -> None:
        self._recorder.request_received(msg.job.id)

    def _before_assignment(self, msg: Any) -> None:
        self._recorder.assignment_received(msg.job.id)

    def _before_send(self, msg: Any) -> None:
        which = msg.WhichOneof("message")
        if sdk.dropped_while_connecting(self._worker, which):
            return  # the SDK drops it: the server never sees this status
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
