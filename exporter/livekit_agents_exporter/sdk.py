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
import os
import re
import sys
from collections.abc import Callable, Coroutine
from types import FrameType, SimpleNamespace
from typing import Any

from .extras import require

# one sentence naming the extra, not a bare ModuleNotFoundError, when something imports the
# exporter's SDK side without the SDK
require("livekit", "livekit_agents_exporter.instrument()")

from livekit import agents  # noqa: E402 - after the check above
from livekit.agents import worker as _worker_mod  # noqa: E402 - after the check above

logger = logging.getLogger("livekit_agents_exporter")


class _NeverRaised(Exception):
    """Stands in for an SDK exception class that has moved: nothing raises it."""


SDK_VERSION: str = getattr(agents, "__version__", "unknown")
AssignmentTimeoutError: type[Exception] = getattr(agents, "AssignmentTimeoutError", _NeverRaised)
# ``Any``: the SDK's classes are used through the names below, whose presence varies by release
AgentServer: Any = getattr(_worker_mod, "AgentServer", None)
LegacyWorker: Any = None if AgentServer is not None else getattr(_worker_mod, "Worker", None)
WorkerOptions: Any = _worker_mod.WorkerOptions
# ``None`` when the SDK moved it: then the hooks that need it are reported unattached
DEFAULT_LOAD_FNC: Callable[..., float] | None = getattr(
    getattr(_worker_mod, "_DefaultLoadCalc", None), "get_load", None)
DEFAULT_REQUEST_FNC: Callable[..., Any] | None = getattr(_worker_mod, "_default_request_fnc", None)
WORKER_CLASS: Any = AgentServer or LegacyWorker

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


_range_warned: set[str] = set()  # versions warned about in this process


def check_tested_range() -> bool:
    """Warn once per process when the installed SDK is outside the tested range."""
    inside = version_in_range(SDK_VERSION)
    if not inside and SDK_VERSION not in _range_warned:
        logger.warning(
            "livekit-agents-exporter is tested with livekit-agents %s; livekit-agents %s is "
            "installed. The worker runs as usual; every hook that cannot attach on this "
            "version is switched off on its own and shows as 0 in "
            "livekit_agents_exporter_hooks_attached{hook}.",
            ",".join(TESTED_SDK_RANGE), SDK_VERSION)
        _range_warned.add(SDK_VERSION)
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


def inert_worker() -> Any:
    """A worker-shaped object whose protocol methods do nothing: tapped like a worker, it shows
    what the hooks cost with the SDK's own work taken out (benchmarks/micro.py)."""

    def ignore(self: Any, msg: Any = None) -> None:
        pass

    async def ignore_async(self: Any, msg: Any = None) -> None:
        pass

    coroutines = ("outgoing", "connection")
    methods = {name: ignore_async if hook in coroutines else ignore
               for hook, name in PROTOCOL_METHODS.items()}
    worker = type("InertWorker", (), methods)()
    worker._draining = False
    return worker


def sdk_load_call(fn: Callable[..., float],
                  active_jobs: list[Any]) -> Callable[[], Coroutine[Any, Any, float]] | None:
    """The SDK's own call of a load function, ``AgentServer._invoke_load_fnc`` (1.3+):
    signature inspection and the executor hop included; ``None`` on an SDK without it."""
    invoke = getattr(AgentServer, "_invoke_load_fnc", None)
    if invoke is None:
        return None
    server = SimpleNamespace(_load_fnc=fn, active_jobs=active_jobs)  # what fn(server) reads
    return lambda: invoke(server)


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
# The hooks are plain functions returning the SDK's own coroutine, not ``async`` wrappers
# awaiting it: then no exporter frame sits in a traceback of the worker's run (a missing
# LIVEKIT_URL, a refused connection), which is the SDK's error, not the exporter's.
_RUN_HOOK_MARK = "_livekit_agents_exporter_hook"


def wrap_instance_run(worker: Any, before: Callable[[], None]) -> None:
    """Make ``worker.run()`` call ``before()`` first (only this instance)."""
    original = worker.run

    def run(*args: Any, **kwargs: Any) -> Any:
        before()
        return original(*args, **kwargs)

    worker.run = run


def wrap_class_run(before: Callable[[Any], None]) -> None:
    """Make every worker's ``run()`` call ``before(worker)`` first; installed once.

    How workers that ``cli.run_app`` builds from instrumented options get wired.
    """
    cls = WORKER_CLASS
    if getattr(cls.run, _RUN_HOOK_MARK, False):
        return
    original = cls.run

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        before(self)
        return original(self, *args, **kwargs)

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
        fn: Callable[..., float] | None = (
            self.worker._load_fnc if self.is_agent_server else self._opts.load_fnc)
        return fn

    def set_load_fnc(self, fn: Callable[..., float]) -> None:
        if self.is_agent_server:
            self.worker._load_fnc = fn
        else:
            self._opts.load_fnc = fn

    def get_request_fnc(self) -> Callable[..., Any] | None:
        fn: Callable[..., Any] | None = (
            self.worker._request_fnc if self.is_agent_server else self._opts.request_fnc)
        return fn

    def set_request_fnc(self, fn: Callable[..., Any]) -> None:
        if self.is_agent_server:
            self.worker._request_fnc = fn
        else:
            self._opts.request_fnc = fn

    def get_entrypoint(self) -> Callable[..., Any] | None:
        fn: Callable[..., Any] | None = (
            self.worker._entrypoint_fnc if self.is_agent_server else self._opts.entrypoint_fnc)
        return fn

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
        return str(self.worker._agent_name if self.is_agent_server else self._opts.agent_name)

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

    def job_executors(self) -> list[Any]:
        """The pool's job executors (processes or threads); ``pid`` and ``running_job`` are
        public on them."""
        if not hasattr(self.worker, "_proc_pool"):
            return []
        return list(self.worker._proc_pool.processes)

    def job_process_pids(self) -> list[int]:
        pids = []
        for proc in self.job_executors():
            pid = getattr(proc, "pid", None)
            if isinstance(pid, int):
                pids.append(pid)
        return pids



def options_of(worker: Any) -> Any:
    """The WorkerOptions a 1.2 ``Worker`` was built from (None for an AgentServer)."""
    if AgentServer is not None and isinstance(worker, AgentServer):
        return None
    return getattr(worker, "_opts", None)


def request_fnc_built_with(worker: Any) -> Any:
    """The request handler a worker was built with (from its options, for ``cli.run_app``).

    What identifies the instrumented options a worker came from: not the load_fnc, which
    the SDK replaces on LiveKit Cloud before ``run()``.
    """
    try:
        return WorkerView(worker).get_request_fnc()
    except AttributeError:
        return None


def restore_instance_run(worker: Any) -> None:
    """Undo ``wrap_instance_run``: the class's ``run`` is the instance's again."""
    worker.__dict__.pop("run", None)


# -- building a worker, as cli.run_app does ------------------------------------------------
# ``WorkerOptions`` is accepted by both generations; ``cli.run_app`` turns it into an
# ``AgentServer.from_server_options(opts)`` (1.3+, ``worker.py``) or a ``Worker(opts)``
# (1.2, ``cli/cli.py``), whose ``run()`` takes ``devmode`` (1.3+) or nothing (1.2).
def worker_options(entrypoint: Callable[..., Any], *, load_fnc: Callable[..., float],
                   load_threshold: float, agent_name: str, ws_url: str, api_key: str,
                   api_secret: str, executor: str = "thread",
                   request_fnc: Callable[..., Any] | None = None, **options: Any) -> Any:
    """``WorkerOptions`` for either generation; ``executor`` is ``"thread"`` or ``"process"``.

    ``options`` are further ``WorkerOptions`` fields (``num_idle_processes``, ``port``, ...).
    """
    if request_fnc is not None:
        options["request_fnc"] = request_fnc
    return WorkerOptions(
        entrypoint_fnc=entrypoint, load_fnc=load_fnc, load_threshold=load_threshold,
        agent_name=agent_name, ws_url=ws_url, api_key=api_key, api_secret=api_secret,
        job_executor_type=agents.JobExecutorType(executor), **options)


def build_worker(opts: Any) -> Any:
    """The worker ``cli.run_app(opts)`` would build, in production mode."""
    if AgentServer is not None:
        return AgentServer.from_server_options(opts)
    return LegacyWorker(opts, devmode=False)


def run_worker(worker: Any) -> Coroutine[Any, Any, None]:
    """The coroutine that runs ``worker`` in production mode until it is closed."""
    run: Coroutine[Any, Any, None] = (
        worker.run(devmode=False) if AgentServer is not None and isinstance(worker, AgentServer)
        else worker.run())
    return run


def native_metrics_port(worker: Any) -> int | None:
    """The port of the SDK's own Prometheus endpoint (``prometheus_port``), once it serves.

    Both generations keep it as ``_prometheus_server`` (a ``telemetry.http_server.HttpServer``).
    """
    server = getattr(worker, "_prometheus_server", None)
    port = getattr(server, "port", None)
    return port if isinstance(port, int) else None


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
        frame: FrameType | None = sys._getframe(1)
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

        hooked_run._livekit_agents_exporter_cbs = callbacks  # type: ignore[attr-defined]  # marker
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


# -- a channel from a job's code to the worker process: the SDK's log forwarding ---------
# Under the process executor a job runs in a child process, and the SDK forwards every log
# record of it to the worker process: the child's root logger gets a ``LogQueueHandler``
# (``ipc/log_queue.py``, added in ``ipc/job_proc_lazy_main.py`` in 1.8 and
# ``ipc/proc_client.py`` in 1.2), which formats the message, drops ``args`` and
# ``exc_info`` and pickles the rest of the record, ``extra`` fields included; the worker's
# ``LogQueueListener`` hands it to ``logging.getLogger(record.name)`` if that logger is
# enabled for its level. Under the thread executor the record is simply logged in the
# worker process. So a record on a logger of our own, with our fields in ``extra``,
# arrives in the worker process either way.
JOB_EVENTS_LOGGER = "livekit_agents_exporter.job_events"
_EVENT_FIELD = "lk_exporter_event"
_JOB_FIELD = "lk_exporter_job_id"


def send_job_event(event: str, job_id: str) -> None:
    """From a job's code (its process or thread): tell the worker process ``event`` happened."""
    events = logging.getLogger(JOB_EVENTS_LOGGER)
    # in a job process the level is the one the SDK copied from the worker: force ours
    events.setLevel(logging.INFO)
    events.info("job %s: %s", job_id, event, extra={_EVENT_FIELD: event, _JOB_FIELD: job_id})


class JobEventChannel(logging.Handler):
    """In the worker process: hears ``send_job_event`` and reports ``(event, job_id)``."""

    def __init__(self, receive: Callable[[str, str], None],
                 on_error: Callable[[], None]) -> None:
        super().__init__(level=logging.INFO)
        self._receive = receive
        self._on_error = on_error

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = getattr(record, _EVENT_FIELD, None)
            job_id = getattr(record, _JOB_FIELD, None)
            if isinstance(event, str) and isinstance(job_id, str):
                self._receive(event, job_id)
        except Exception:
            self._on_error()

    def install(self) -> None:
        events = logging.getLogger(JOB_EVENTS_LOGGER)
        events.setLevel(logging.INFO)  # the listener drops records its logger would not log
        events.propagate = False  # our records are signals, not log lines for the user
        events.addHandler(self)

    def remove(self) -> None:
        logging.getLogger(JOB_EVENTS_LOGGER).removeHandler(self)
