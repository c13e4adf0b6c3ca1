"""Wraps the job request handler (``on_request`` / ``request_fnc``).

On the wire every refusal is just ``available=false``; only inside the worker can one
tell a handler's ``reject()`` from a handler that returned without answering or
raised. ``AssignmentTimeoutError`` is raised out of ``accept()``, so it is counted
there, even when the user's handler catches it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .load_probe import _unwrapped
from .recorder import Recorder
from .safety import ErrorSink
from .sdk import AssignmentTimeoutError


class ObservedRequestFnc:
    """Calls the user's handler unchanged, noting how it answered."""

    def __init__(self, fn: Callable[..., Any], recorder: Recorder, errors: ErrorSink) -> None:
        self.wrapped = fn
        self._recorder = recorder
        self._errors = errors
        self._observing = True

    def stop_observing(self) -> None:
        """From now on only call the user's handler (``Exporter.close()``)."""
        self._observing = False

    async def __call__(self, req: Any) -> None:
        if not self._observing:
            return await self.wrapped(req)  # type: ignore[no-any-return]  # handler returns None
        answered: list[str] = []  # this offer's answers, as the handler gave them
        observed = False
        with self._errors.guard("request_fnc"):
            self._recorder.handler_started(req.id)
            self._observe_answers(req, answered)
            observed = True
        try:
            await self.wrapped(req)
        except BaseException:
            if observed and not answered:
                self._ended(req.id, "error")
            raise
        if observed and not answered:
            self._ended(req.id, "unanswered")

    def _ended(self, job_id: str, outcome: str) -> None:
        with self._errors.guard("request_fnc"):
            self._recorder.handler_ended(job_id, outcome)

    def _observe_answers(self, req: Any, answered: list[str]) -> None:
        accept, reject = req.accept, req.reject
        recorder = self._recorder
        errors = self._errors

        def note(answer: str) -> None:
            # queued before the SDK sends the answer, so it is applied before the wire's
            if not answered:
                with errors.guard("request_fnc"):
                    recorder.handler_answered(req.id, answer)
            answered.append(answer)

        async def observed_accept(*args: Any, **kwargs: Any) -> None:
            note("accept")
            try:
                await accept(*args, **kwargs)
            except AssignmentTimeoutError:
                with errors.guard("assignment_timeout"):
                    recorder.assignment_timed_out(req.id)
                raise

        async def observed_reject(*args: Any, **kwargs: Any) -> None:
            # the first answer is the one the server acts on (reject() then accept())
            note("reject")
            await reject(*args, **kwargs)

        req.accept = observed_accept
        req.reject = observed_reject

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled into another process (1.2 dev-mode reload): the exporter stays behind
        return (_unwrapped, (self.wrapped,))

    def __repr__(self) -> str:
        return f"ObservedRequestFnc({self.wrapped!r})"
