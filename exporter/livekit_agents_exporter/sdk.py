"""Everything the exporter knows about livekit-agents internals, in one place.

The SDK exposes no hooks for what operators need, so the exporter reads and wraps a
few private names. They differ between the old ``Worker`` (1.0-1.2) and the new
``AgentServer`` (1.3+); this module hides the difference so that the rest of the
package never touches a private SDK name. When a new SDK release moves something,
this is the file to change.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable
from typing import Any

from livekit import agents
from livekit.agents import worker as _worker_mod

logger = logging.getLogger("livekit_agents_exporter")


class _NeverRaised(Exception):
    """Stands in for an SDK exception class that has moved: nothing raises it."""


SDK_VERSION: str = getattr(agents, "__version__", "unknown")
AssignmentTimeoutError: type[Exception] = getattr(agents, "AssignmentTimeoutError", _NeverRaised)
AgentServer: type | None = getattr(_worker_mod, "AgentServer", None)
LegacyWorker: type | None = None if AgentServer is not None else getattr(_worker_mod, "Worker", None)
WorkerOptions: type = _worker_mod.WorkerOptions
# ``None`` when the SDK moved it: then the hooks that need it are reported unattached
DEFAULT_LOAD_FNC: Callable[..., float] | None = getattr(
    getattr(_worker_mod, "_DefaultLoadCalc", None), "get_load", None)
DEFAULT_REQUEST_FNC: Callable[..., Any] | None = getattr(_worker_mod, "_default_request_fnc", None)
WORKER_CLASS: type = AgentServer or LegacyWorker  # type: ignore[assignment]

# -- the supported range, declared (the OpenTelemetry instrumentation convention) -----------
# ``pyproject.toml`` only sets a lower bound, so users can upgrade the SDK; outside this range
# instrument() warns once, and any hook whose SDK name has moved shows in
# ``livekit_agents_exporter_hooks_attached``. CI runs the counting scenario on the latest
# patch of every minor in it (``make test-matrix``).
TESTED_SDK_RANGE: tuple[str, str] = (">=1.2", "<1.9")


def _release(version: str) -> tuple[int, ...]:
    """``"1.8.9"`` -> ``(1, 8, 9)``; pre-release and local parts are ignored."""
    parts = []
    for piece in version.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


def version_in_range(version: str, spec: tuple[str, ...] = TESTED_SDK_RANGE) -> bool:
    """Whether ``version`` satisfies every ``>=X.Y`` / ``<X.Y`` bound of ``spec``."""
    have = _release(version)
    if not have:
        return False
    for bound in spec:
        op, ref = _split(bound)
        want = _release(ref)
        width = max(len(have), len(want))
        a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
        if not {">=": a >= b, ">": a > b, "<": a < b, "<=": a <= b, "==": a == b}[op]:
            return False
    return True


def _split(bound: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*(>=|<=|==|>|<)\s*([0-9][0-9A-Za-z.]*)\s*", bound)
    if match is None:
        raise ValueError(f"bad version bound {bound!r}")
    return match.group(1), match.group(2)


_range_checked = False


def check_tested_range() -> bool:
    """Warn once per process when the installed SDK is outside the tested range."""
    global _range_checked
    inside = version_in_range(SDK_VERSION)
    if not inside and not _range_checked:
        logger.warning(
            "livekit-agents-exporter is tested with livekit-agents %s; livekit-agents %s is "
            "installed. The worker runs as usual; every hook that cannot attach on this "
            "version is switched off on its own and shows as 0 in "
            "livekit_agents_exporter_hooks_attached{hook}.",
            ",".join(TESTED_SDK_RANGE), SDK_VERSION)
    _range_checked = True
    return inside


# -- behaviour classes, decided from the code that implements them ------------------------
# (docs/SDK_INTERNALS.md has the versions each arrived in and the source they come from)
#: ``_answer_availability`` refuses (``available=false``) without calling on_request when
#: ``_is_available()`` is false: full or draining (livekit-agents 1.4.2 and later).
REFUSES_WHEN_FULL: bool = hasattr(WORKER_CLASS, "_is_available")
#: load_fnc runs again before each offer is answered (``_refresh_worker_load``, 1.4.5+).
LOAD_REFRESHED_BEFORE_OFFER: bool = hasattr(WORKER_CLASS, "_refresh_worker_load")
#: accepted-but-unassigned offers count in the load compared with the threshold
#: (``_get_effective_load`` with ``_reserved_slots``, 1.4.5+, livekit/agents PR #4911).
RESERVED_SLOTS_IN_LOAD: bool = hasattr(WORKER_CLASS, "_get_effective_load")

# -- the private methods the wire taps wrap, by hook --------------------------------------
# Every server message is dispatched to one of the ``_handle_*`` methods, every worker
# message goes through ``_queue_msg``, and a registered connection lives as long as
# ``_run_ws`` runs (worker.py of every release from 1.2 through 1.8).
PROTOCOL_METHODS: dict[str, str] = {
    "register": "_handle_register",
    "availability": "_handle_availability",
    "assignment": "_handle_assignment",
    "outgoing": "_queue_msg",
    "connection": "_run_ws",
}


class HookUnavailable(Exception):
    """The SDK name a hook needs is not there (moved or renamed in this release)."""


def protocol_method(worker: Any, hook: str) -> tuple[str, Callable[..., Any]]:
    """The private method behind ``hook`` on this worker, or ``HookUnavailable``."""
    name = PROTOCOL_METHODS[hook]
    method = getattr(worker, name, None)
    if not callable(method):
        raise HookUnavailable(f"{type(worker).__name__}.{name} not found")
    return name, method


def replace_method(worker: Any, name: str, fn: Callable[..., Any]) -> None:
    """Shadow a method on this one worker instance (the class stays untouched)."""
    setattr(worker, name, fn)


def restore_method(worker: Any, name: str) -> None:
    worker.__dict__.pop(name, None)


def dropped_while_connecting(worker: Any, which: str | None) -> bool:
    """Whether ``_queue_msg`` drops this message instead of sending it.

    Both generations' ``_queue_msg`` return without queueing ``update_worker`` and
    ``ping`` while ``_connecting`` is set, i.e. from the start of a (re)connection attempt
    until the server answered the registration; everything else is queued and goes out
    on the next connection.
    """
    return which in ("update_worker", "ping") and bool(getattr(worker, "_connecting", False))


# -- LiveKit Cloud ------------------------------------------------------------------------
# On Cloud the SDK replaces a custom load_fnc and load_threshold with its defaults (and logs
# "custom load_fnc is not supported when hosting on Cloud, reverting to default"). Both
# generations decide it from the ``LIVEKIT_WORKER_TOKEN`` environment variable read when
# the worker object is built: 1.2 in ``Worker.__init__`` (``opts._worker_token``, replaced
# right there), 1.3+ in ``AgentServer.__init__`` (``_worker_token``, shown as
# ``worker_info.cloud_agents``, replaced at the start of ``run()``).
CLOUD_TOKEN_ENV = "LIVEKIT_WORKER_TOKEN"


def cloud_from_environment() -> bool:
    """What a worker built now would decide (for options, before the worker exists)."""
    return bool(os.environ.get(CLOUD_TOKEN_ENV))


def on_cloud(worker: Any) -> bool:
    """Whether this worker runs with the SDK's Cloud load defaults."""
    if AgentServer is not None and isinstance(worker, AgentServer):
        return bool(getattr(worker, "_worker_token", ""))
    return bool(getattr(getattr(worker, "_opts", None), "_worker_token", None))


# -- the run() hook -------------------------------------------------------------------------
_RUN_HOOK_MARK = "_livekit_agents_exporter_hook"


def wrap_instance_run(worker: Any, before: Callable[[], None]) -> None:
    """Make ``worker.run()`` call ``before()`` first (only this instance)."""
    original = worker.run

    async def run(*args: Any, **kwargs: Any) -> Any:
        before()
        return await original(*args, **kwargs)

    worker.run = run


def wrap_class_run(before: Callable[[Any], None]) -> None:
    """Make every worker's ``run()`` call ``before(worker)`` first; installed once.

    How workers that ``cli.run_app`` builds from instrumented options get wired.
    """
    cls = WORKER_CLASS
    if getattr(cls.run, _RUN_HOOK_MARK, False):
        return
    original = cls.run

    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        before(self)
        return await original(self, *args, **kwargs)

    setattr(run, _RUN_HOOK_MARK, True)
    cls.run = run


def _env_value(option: Any, devmode: bool) -> Any:
    """Resolve ``ServerEnvOption`` (1.8) / ``_WorkerEnvOption`` (1.2) values."""
    if hasattr(option, "dev_default") and hasattr(option, "prod_default"):
        return option.dev_default if devmode else option.prod_default
    return option


class WorkerView:
    """Uniform access to one worker object of either SDK generation."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.is_agent_server = AgentServer is not None and isinstance(worker, AgentServer)

    # -- user callbacks (read and replaced before the worker runs) -----------------
    @property
    def _opts(self) -> Any:
        return self.worker._opts

    def get_load_fnc(self) -> Callable[..., float] | None:
        return self.worker._load_fnc if self.is_agent_server else self._opts.load_fnc

    def set_load_fnc(self, fn: Callable[..., float]) -> None:
        if self.is_agent_server:
            self.worker._load_fnc = fn
        else:
            self._opts.load_fnc = fn

    def get_request_fnc(self) -> Callable[..., Any] | None:
        return self.worker._request_fnc if self.is_agent_server else self._opts.request_fnc

    def set_request_fnc(self, fn: Callable[..., Any]) -> None:
        if self.is_agent_server:
            self.worker._request_fnc = fn
        else:
            self._opts.request_fnc = fn

    def get_entrypoint(self) -> Callable[..., Any] | None:
        return self.worker._entrypoint_fnc if self.is_agent_server else self._opts.entrypoint_fnc

    def set_entrypoint(self, fn: Callable[..., Any]) -> None:
        if self.is_agent_server:
            self.worker._entrypoint_fnc = fn
        else:
            # the 1.2 Worker built its process pool in __init__ from the options
            self._opts.entrypoint_fnc = fn
            self.worker._proc_pool._job_entrypoint_fnc = fn

    # -- facts -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return not self.worker._closed

    @property
    def devmode(self) -> bool:
        return bool(getattr(self.worker, "_devmode", False))

    @property
    def agent_name(self) -> str:
        return self.worker._agent_name if self.is_agent_server else self._opts.agent_name

    @property
    def worker_type(self) -> str:
        wtype = self.worker._server_type if self.is_agent_server else self._opts.worker_type
        return str(getattr(wtype, "name", wtype))

    def load_threshold(self) -> float:
        raw = self.worker._load_threshold if self.is_agent_server else self._opts.load_threshold
        return float(_env_value(raw, self.devmode))

    def memory_limit_bytes(self) -> float:
        mb = (self.worker._job_memory_limit_mb if self.is_agent_server
              else self._opts.job_memory_limit_mb)
        return float(mb or 0) * 1024 * 1024

    def draining(self) -> bool:
        return bool(self.worker._draining)

    def reported_load(self) -> float:
        return float(getattr(self.worker, "_worker_load", math.nan))

    def effective_load(self) -> float:
        """The value the SDK compares with the threshold (load + reserved slots from 1.4.5)."""
        effective = getattr(self.worker, "_get_effective_load", None)
        if effective is not None and hasattr(self.worker, "_reserved_slots"):
            return float(effective())
        return self.reported_load()

    def active_jobs(self) -> int:
        if not hasattr(self.worker, "_proc_pool"):
            return 0
        return len(self.worker.active_jobs)

    def job_process_pids(self) -> list[int]:
        if not hasattr(self.worker, "_proc_pool"):
            return []
        pids = []
        for proc in list(self.worker._proc_pool.processes):
            pid = getattr(proc, "pid", None)
            if isinstance(pid, int):
                pids.append(pid)
        return pids



def find_pending_worker_owner(worker: Any) -> Any:
    """The object the options path tagged: the request handler the worker was built with.

    Not the load_fnc: on LiveKit Cloud the SDK replaces that one before ``run()``.
    """
    try:
        return WorkerView(worker).get_request_fnc()
    except AttributeError:
        return None
