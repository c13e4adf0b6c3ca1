"""Each hook into the worker attaches on its own, and says whether it did.

The exporter reads and wraps private SDK names (``sdk.py``); a release that moves one must
cost that one hook, never the worker or the other hooks. ``Hooks.attach`` runs one hook's
installation: on success ``livekit_agents_exporter_hooks_attached{hook}`` turns 1; on
failure it stays 0, the failure is counted in
``livekit_agents_exporter_errors_total{component="hooks"}`` and logged once, naming the hook
and the SDK version, and the worker carries on without that observation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import metrics
from .recorder import Recorder
from .safety import ErrorSink

logger = logging.getLogger("livekit_agents_exporter")

# what each hook observes, for the one-line warning when it cannot attach
OBSERVES: dict[str, str] = {
    "worker_run": "everything (the worker's run() was not hooked)",
    "load_fnc": "load samples (worker_load_samples_ratio, load_fnc errors and durations)",
    "request_fnc": "refusal reasons and assignment timeouts",
    "entrypoint": "entrypoint errors in job processes",
    "register": "registrations (worker_registered, worker_registrations_total)",
    "availability": "job offers (job_requests_total, answer and dispatch latencies)",
    "assignment": "assignments (job_assignments_total)",
    "outgoing": "answers, status reports and job updates (accepted, rejected, full, launched, "
                "finished)",
    "connection": "disconnections (worker_registered back to 0)",
    "job_failures": "entrypoint errors forwarded from job processes",
    "process_failures": "job processes that failed to start, initialise or take a job "
                        "(job_process_failures_total)",
}
assert set(OBSERVES) == set(metrics.EXPORTER_HOOKS), "every catalogue hook says what it observes"


class Hooks:
    """The attach state of one exporter's hooks."""

    def __init__(self, recorder: Recorder, errors: ErrorSink, sdk_version: str) -> None:
        self._recorder = recorder
        self._errors = errors
        self._sdk_version = sdk_version
        self._logged: set[str] = set()
        self.state: dict[str, bool] = {hook: False for hook in metrics.EXPORTER_HOOKS}

    def attach(self, hook: str, install: Callable[[], Any]) -> bool:
        """Run ``install()``; its exception switches this hook off alone."""
        try:
            install()
        except Exception as exc:  # an SDK name moved, or a value we did not expect
            self._failed(hook, exc)
            return False
        self._set(hook, True)
        return True

    def off(self, hook: str) -> None:
        """Not attached on purpose (e.g. the SDK replaces the callback): no error."""
        self._set(hook, False)

    def _set(self, hook: str, attached: bool) -> None:
        self.state[hook] = attached
        self._recorder.set_hook(hook, attached)

    def _failed(self, hook: str, exc: BaseException) -> None:
        self._set(hook, False)
        self._errors.count("hooks")
        if hook in self._logged:
            return
        self._logged.add(hook)
        logger.warning(
            "livekit-agents-exporter: hook %r not attached on livekit-agents %s (%s: %s); "
            "the worker runs as usual, but %s is not observed "
            "(livekit_agents_exporter_hooks_attached{hook=%r} is 0)",
            hook, self._sdk_version, type(exc).__name__, exc, OBSERVES[hook], hook)
