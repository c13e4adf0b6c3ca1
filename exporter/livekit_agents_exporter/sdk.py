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
import multiprocessing
import sys
from collections.abc import Callable
from typing import Any

from .sdk_extra import require_sdk

require_sdk("livekit_agents_exporter.instrument()")  # one sentence naming the extra, not a bare
# ModuleNotFoundError, when something imports the exporter's SDK side without the SDK

from livekit import agents  # noqa: E402
from livekit.agents import worker as _worker_mod  # noqa: E402

SDK_VERSION: str = getattr(agents, "__version__", "unknown")
AssignmentTimeoutError: type[Exception] = agents.AssignmentTimeoutError
AgentServer: type | None = getattr(_worker_mod, "AgentServer", None)
LegacyWorker: type | None = None if AgentServer is not None else getattr(_worker_mod, "Worker", None)
WorkerOptions: type = _worker_mod.WorkerOptions
DEFAULT_LOAD_FNC: Callable[..., float] = _worker_mod._DefaultLoadCalc.get_load
WORKER_CLASS: type = AgentServer or LegacyWorker  # type: ignore[assignment]


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
        """The value the SDK compares with the threshold (load + reserved slots on 1.8)."""
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



def worker_options(worker: Any) -> Any:
    """The WorkerOptions a 1.2 ``Worker`` was built from (None for an AgentServer)."""
    if AgentServer is not None and isinstance(worker, AgentServer):
        return None
    return getattr(worker, "_opts", None)


def find_pending_worker_owner(worker: Any) -> Any:
    """The object the options path tagged: the load_fnc the worker was built with."""
    if AgentServer is not None and isinstance(worker, AgentServer):
        return worker._load_fnc
    return getattr(getattr(worker, "_opts", None), "load_fnc", None)


# -- the SDK's own child processes ---------------------------------------------------
# With the process executor the SDK starts job processes (idle ones included) and, with
# inference runners, one inference process, through ``multiprocessing`` (forkserver on
# Linux, spawn elsewhere). Under forkserver and spawn the child imports the user's main
# module again as ``__mp_main__``, so a module-level ``instrument()`` runs there too.
# The SDK names these processes (``mp_ctx.Process(..., name=...)`` in
# ``ipc/job_proc_executor.py`` and ``ipc/inference_proc_executor.py``) and tests the name
# itself at import (``ipc/job_proc_lazy_main.py``, ``ipc/inference_proc_lazy_main.py``);
# ``multiprocessing.spawn.prepare`` sets the name before it imports the main module.
SDK_CHILD_PROCESS_NAMES: dict[str, str] = {
    "job_proc": "job process",                      # 1.2 and 1.8
    "agents_inference_process": "inference process",  # 1.8
    "inference_proc": "inference process",            # 1.2
}


def sdk_child_process() -> str | None:
    """What kind of SDK child process this interpreter is, or None in the worker's own process.

    Besides the named job and inference processes, the forkserver itself imports the main
    module when ``__main__`` is among its preloaded modules (a user's ``preload_modules``);
    it is recognised by ``multiprocessing.forkserver.main`` being on the stack.
    """
    name = multiprocessing.current_process().name
    if name in SDK_CHILD_PROCESS_NAMES:
        return SDK_CHILD_PROCESS_NAMES[name]
    forkserver = sys.modules.get("multiprocessing.forkserver")
    main = getattr(forkserver, "main", None)
    code = getattr(main, "__code__", None)
    if code is not None:
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code is code:
                return "forkserver"
            frame = frame.f_back
    return None


def on_dev_reloader_start(callback: Callable[[], None]) -> bool:
    """Call ``callback`` when this process becomes the SDK's dev-mode file watcher.

    1.2's ``python agent.py dev`` runs ``cli/watcher.py``'s ``WatchServer`` in the process
    the user started and the worker in a child it spawns (``watchfiles.arun_process``,
    spawn start method), which imports the main module again and instruments itself. The
    watcher never runs a worker, so what it bound must be released before the child
    starts. 1.8's dev mode runs the worker in the process the user started (reloading is
    done by the ``lk`` CLI), so there is nothing to hook. Returns whether a hook was set.
    """
    try:
        from livekit.agents.cli import watcher
    except Exception:  # watchfiles missing, or a layout without the module
        return False
    cls = getattr(watcher, "WatchServer", None)
    run = getattr(cls, "run", None)
    if cls is None or run is None:
        return False
    callbacks: list[Callable[[], None]] | None = getattr(run, "_livekit_agents_exporter_cbs", None)
    if callbacks is None:
        callbacks = []
        original = run

        def hooked_run(self: Any, *args: Any, **kwargs: Any) -> Any:
            # a plain function handing back the SDK's coroutine: no exporter frame in the
            # traceback of whatever goes wrong in the user's dev loop
            for cb in list(callbacks):
                try:
                    cb()
                except Exception:  # never in the way of the user's dev loop
                    logging.getLogger("livekit_agents_exporter").debug(
                        "dev reloader hand-off failed", exc_info=True)
            return original(self, *args, **kwargs)

        hooked_run._livekit_agents_exporter_cbs = callbacks  # type: ignore[attr-defined]
        cls.run = hooked_run
    callbacks.append(callback)
    return True


# -- job executor failures the SDK only logs --------------------------------------------
SDK_LOGGER = "livekit.agents"
# The exact ``msg`` templates of the SDK's log calls (``record.msg``, before formatting),
# by the reason they are counted under. ``ipc/proc_pool.py`` in 1.8.9: ``logger.exception``
# in ``_proc_spawn_task``, ``logger.error`` at the end of ``_acquire_proc`` and of
# ``launch_job``'s retries; 1.2.18 has only the first (its ``launch_job`` waits for a
# process without a limit and does not retry a failed launch).
PROCESS_FAILURE_MESSAGES: dict[str, str] = {
    "error initializing process": "initialize",
    "failed to acquire process for job after %d attempts": "acquire",
    "failed to launch job on process after %d attempts": "launch",
}


class ProcessFailureChannel(logging.Handler):
    """Hears the SDK's process-pool failure lines and reports ``(reason, pid, job_id)``.

    A handler on the SDK's logger rather than a wrapper around the pool: the pool catches
    these failures itself, and the log call with its fixed template is the one place
    where each of them becomes visible. Records below the SDK logger's level never reach
    a handler, so a user who silences ``livekit.agents`` below ERROR silences this too.
    """

    def __init__(self, report: Callable[[str, int | None, str | None], None],
                 on_error: Callable[[], None]) -> None:
        super().__init__(level=logging.ERROR)
        self._report = report
        self._on_error = on_error

    def emit(self, record: logging.LogRecord) -> None:
        try:
            reason = PROCESS_FAILURE_MESSAGES.get(record.msg) if isinstance(record.msg, str) \
                else None
            if reason is None or record.name != SDK_LOGGER:
                return
            pid = getattr(record, "pid", None)
            job_id = getattr(record, "job_id", None)
            self._report(reason, pid if isinstance(pid, int) else None,
                         job_id if isinstance(job_id, str) else None)
        except Exception:
            self._on_error()

    def install(self) -> None:
        logging.getLogger(SDK_LOGGER).addHandler(self)

    def remove(self) -> None:
        logging.getLogger(SDK_LOGGER).removeHandler(self)
