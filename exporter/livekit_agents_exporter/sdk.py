"""Everything the exporter knows about livekit-agents internals, in one place.

The SDK exposes no hooks for what operators need, so the exporter reads and wraps a
few private names. They differ between the old ``Worker`` (1.0-1.2) and the new
``AgentServer`` (1.3+); this module hides the difference so that the rest of the
package never touches a private SDK name. When a new SDK release moves something,
this is the file to change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from livekit import agents
from livekit.agents import worker as _worker_mod

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



def find_pending_worker_owner(worker: Any) -> Any:
    """The object the options path tagged: the load_fnc the worker was built with."""
    if AgentServer is not None and isinstance(worker, AgentServer):
        return worker._load_fnc
    return getattr(getattr(worker, "_opts", None), "load_fnc", None)
