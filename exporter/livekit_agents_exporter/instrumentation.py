"""``instrument()``: one call that makes a LiveKit Agents worker observable.

It accepts the three ways people run workers: an ``AgentServer`` (1.3+), a legacy
``Worker`` (1.0-1.2) and the ``WorkerOptions`` handed to ``cli.run_app`` (where the
user never holds the worker). The metrics endpoint starts immediately, so a bad
address fails before the worker does; the hooks are wired when the worker starts
running, once its agent name, callbacks and dev/prod mode are final. Every series
exists from the ``instrument()`` call on, with each hook reported unattached until it
is, and a worker that runs without going through the hook is warned about once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from . import metrics, sdk
from .errors import InstrumentationError
from .hooks import Hooks
from .http_server import DEFAULT_HOST, DEFAULT_PORT, MetricsServer
from .job_probe import ObservedEntrypoint, job_failure_channel
from .load_probe import ObservedLoadFnc, check_load_fnc
from .process_stats import ProcessStats
from .recorder import DrainThread, Recorder
from .request_probe import ObservedRequestFnc
from .safety import ErrorSink
from .version import __version__
from .web_config import WebConfig, load_web_config
from .wire_tap import WireTap

_ATTR = "_livekit_agents_exporter"
_UNSET: Any = object()
logger = logging.getLogger("livekit_agents_exporter")

#: seconds a worker may run without its run() going through the exporter's hook before
#: the one warning about it (for options: seconds after instrument() without such a worker)
RUN_HOOK_GRACE_S = 30.0
# exporters of instrumented options whose worker has not started yet
_pending_options: weakref.WeakSet[Exporter] = weakref.WeakSet()
# the exporter of instrumented options, by the observed request handler they carry into the
# worker built from them (``sdk.request_fnc_built_with``); weak, so that neither the options
# nor the handler keep an exporter, and the probes know nothing of exporters
_exporter_of_handler: weakref.WeakKeyDictionary[ObservedRequestFnc, Exporter] = \
    weakref.WeakKeyDictionary()
# the endpoint's address from the environment, for deployments that configure pods by env;
# an explicit ``port=`` / ``host=`` argument wins
PORT_ENV = "LIVEKIT_AGENTS_EXPORTER_PORT"
HOST_ENV = "LIVEKIT_AGENTS_EXPORTER_HOST"
# exporters this process started, for the hand-off to a dev-mode reloader's worker process
_STARTED: list[Exporter] = []
_STARTED_LOCK = threading.Lock()


class Exporter:
    """Handle returned by ``instrument()``: the registry, the endpoint, and ``close()``."""

    def __init__(self, registry: CollectorRegistry, server: MetricsServer | None,
                 settings: dict[str, Any], *, inert_reason: str | None = None) -> None:
        self.registry = registry
        self.server = server
        self.settings = settings
        # why this exporter does nothing (it was created in one of the SDK's job processes),
        # or None for a live one
        self.inert_reason = inert_reason
        self.errors = ErrorSink()
        # an inert exporter's metrics live in a registry of its own that nothing serves
        self.recorder = Recorder(registry if inert_reason is None else CollectorRegistry(),
                                 self.errors)
        self.recorder.refuses_when_full = sdk.REFUSES_WHEN_FULL
        self.hooks = Hooks(self.recorder, self.errors, sdk.SDK_VERSION)
        self.worker: Any = None
        self.unhooked_worker_since: float | None = None  # options: another worker started
        self.on_cloud = False
        self.closed = False
        self._target: Any = None  # what instrument() was given
        self._users_registry = False  # the metrics went into a registry the user passed
        self._tap: WireTap | None = None
        # weak: the mapping of handlers to exporters must not keep its keys alive through this
        self._observed: weakref.WeakSet[ObservedLoadFnc | ObservedRequestFnc] = weakref.WeakSet()
        self._job_events: sdk.JobEventChannel | None = None
        self._process_failures: sdk.ProcessFailureChannel | None = None
        self._drain: DrainThread | None = None
        #: warns once when the worker runs without its run() hooked (``warned``, ``done``)
        self.watchdog: RunWatchdog | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Instrumented WorkerOptions carry their exporter. 1.2's dev mode pickles them into
        # the child process that runs the worker; that child imported the main module
        # again, so its own instrument() call made the exporter that belongs there.
        return (_exporter_of_this_process, ())

    @property
    def active(self) -> bool:
        """False when ``instrument()`` ran in an SDK job process and did nothing there."""
        return self.inert_reason is None

    @property
    def url(self) -> str | None:
        """Where ``/metrics`` is served, or None when only a registry was given."""
        return self.server.url if self.server else None

    # -- wiring --------------------------------------------------------------------
    def observed_load_fnc(self, load_fnc: Callable[..., float] | None) -> ObservedLoadFnc:
        """The user's load_fnc (the SDK default when None), observed."""
        if isinstance(load_fnc, ObservedLoadFnc):
            return load_fnc
        fn = load_fnc or sdk.DEFAULT_LOAD_FNC
        if fn is None:
            raise sdk.HookUnavailable("the SDK's default load function was not found")
        observed = ObservedLoadFnc(fn, self.recorder, self.errors)
        self._observed.add(observed)
        return observed

    def observed_request_fnc(self, request_fnc: Callable[..., Any] | None) -> ObservedRequestFnc:
        """The user's request handler (the SDK default when None), observed."""
        if isinstance(request_fnc, ObservedRequestFnc):
            return request_fnc
        fn = request_fnc or sdk.DEFAULT_REQUEST_FNC
        if fn is None:
            raise sdk.HookUnavailable("the SDK's default request handler was not found")
        observed = ObservedRequestFnc(fn, self.recorder, self.errors)
        self._observed.add(observed)
        return observed

    def bind_series(self, agent_name: str, worker_type: str,
                    live: dict[str, Callable[[], float]] | None = None) -> None:
        """Create every series under ``agent_name`` (again, when the worker runs)."""
        self.recorder.bind(
            agent_name,
            {"worker_type": worker_type, "sdk_version": sdk.SDK_VERSION,
             "exporter_version": __version__},
            live or {})

    def attach(self, worker: Any) -> None:
        """Wire the hooks into a worker that is about to run, each one on its own."""
        if self.closed:
            return
        if self.worker is not None:
            if self.worker is worker:
                return
            raise InstrumentationError(
                "these WorkerOptions were instrumented once and already run by another worker; "
                "call instrument() again for each worker")
        self.worker = worker
        hooks = self.hooks
        hooks.attach("worker_run", lambda: None)
        view = sdk.WorkerView(worker)
        self._note_cloud(view)
        if self.on_cloud:
            hooks.off("load_fnc")  # the SDK replaces any load_fnc with its default there
        else:
            hooks.attach("load_fnc", lambda: view.set_load_fnc(
                self.observed_load_fnc(view.get_load_fnc())))
        hooks.attach("request_fnc", lambda: view.set_request_fnc(
            self.observed_request_fnc(view.get_request_fnc())))
        hooks.attach("entrypoint", lambda: self._observe_entrypoint(view))
        self._tap = WireTap(view, self.recorder, self.errors)
        self._tap.install(hooks)
        stats = ProcessStats(view.job_process_pids)
        live: dict[str, Callable[[], float]] = {
            "worker_load_threshold_ratio": view.load_threshold,
            "worker_effective_load_ratio": view.effective_load,
            "worker_draining": view.draining,
            "worker_active_jobs": view.active_jobs,
            "job_processes": stats.count,
            "job_processes_resident_memory_bytes": stats.total_rss,
            "job_process_max_resident_memory_bytes": stats.max_rss,
            "job_memory_limit_bytes": view.memory_limit_bytes,
        }
        if self.on_cloud:  # no load samples there: read the load the SDK last computed
            live["worker_load_ratio"] = view.reported_load
        self.bind_series(_read(lambda: view.agent_name, ""), _read(lambda: view.worker_type, ""),
                         live)
        self._job_events = job_failure_channel(self.recorder, self.errors)
        hooks.attach("job_failures", self._job_events.install)
        self._process_failures = _process_failure_channel(view, self.recorder, self.errors)
        hooks.attach("process_failures", self._process_failures.install)
        self._drain = DrainThread(self.recorder, self.errors)
        self._drain.start()
        if self.server is not None:
            self.server.ensure_serving()  # a process forked after instrument() serves itself

    def _observe_entrypoint(self, view: sdk.WorkerView) -> None:
        entrypoint = view.get_entrypoint()
        if entrypoint is None:
            raise sdk.HookUnavailable("the worker has no entrypoint")
        if not isinstance(entrypoint, ObservedEntrypoint):
            view.set_entrypoint(ObservedEntrypoint(entrypoint))

    def _note_cloud(self, view: sdk.WorkerView) -> None:
        """On LiveKit Cloud the SDK puts its own load_fnc and load_threshold in place."""
        self.on_cloud = _read(lambda: sdk.on_cloud(view.worker), False)
        self.recorder.set_cloud_load_defaults(self.on_cloud)
        if self.on_cloud:
            logger.warning(
                "livekit-agents-exporter: this worker runs on LiveKit Cloud (%s is set), where "
                "livekit-agents replaces a custom load_fnc and load_threshold with its defaults; "
                "load samples are not observed (exporter_hooks_attached{hook=\"load_fnc\"} 0), "
                "worker_load_ratio shows the load the SDK computed, everything on the wire is "
                "counted as usual (livekit_agents_worker_cloud_load_defaults 1)",
                sdk.CLOUD_TOKEN_ENV)

    def close(self) -> None:
        """Undo what ``instrument()`` did; the worker keeps running, unobserved. Idempotent.

        The wire taps and the run hook come off the worker, the observed callbacks are put
        back where the exporter can reach them and only call the user's function where it
        cannot (a worker built from the options holds its own reference), the log handlers
        are removed, the threads stopped, the endpoint shut and no event is taken after it.
        Metrics registered in a registry the user passed are taken out of it; the exporter's
        own registry keeps the last values for a final read.
        """
        if self.closed:
            return
        self.closed = True
        _pending_options.discard(self)
        if self.watchdog is not None:
            self.watchdog.stop()
        for observed in list(self._observed):
            observed.stop_observing()
        if self._tap is not None:
            self._tap.uninstall()
        for holder in (self.worker, self._target):
            if holder is not None:
                with self.errors.guard("other"):
                    _put_back_callbacks(holder)
        if self._job_events is not None:
            self._job_events.remove()
        if self._process_failures is not None:
            self._process_failures.remove()
        if self._drain is not None:
            self._drain.stop()
        self.recorder.close()
        if self._users_registry:
            self.recorder.unregister()
        if self.server is not None:
            self.server.stop()


_OBSERVED = (ObservedLoadFnc, ObservedRequestFnc, ObservedEntrypoint)
_OPTION_CALLBACKS = ("load_fnc", "request_fnc", "entrypoint_fnc")


def _put_back_callbacks(holder: Any) -> None:
    """The user's own callbacks and ``run`` on a worker or options the exporter wrapped.

    A callback that cannot be put back (an SDK name moved) stays wrapped, and only calls
    the user's function from now on.
    """
    if isinstance(holder, sdk.WorkerOptions):
        for name in _OPTION_CALLBACKS:
            current = getattr(holder, name, None)
            if isinstance(current, _OBSERVED):
                setattr(holder, name, current.wrapped)
        return
    sdk.restore_instance_run(holder)
    view = sdk.WorkerView(holder)
    slots: list[tuple[Callable[[], Any], Callable[[Any], None]]] = [
        (view.get_load_fnc, view.set_load_fnc),
        (view.get_request_fnc, view.set_request_fnc),
        (view.get_entrypoint, view.set_entrypoint)]
    for get, put in slots:
        try:
            current = get()
            if isinstance(current, _OBSERVED):
                put(current.wrapped)
        except Exception:
            logger.debug("livekit-agents-exporter: a callback stays wrapped", exc_info=True)


def _read(getter: Callable[[], Any], default: Any) -> Any:
    """A fact read from the SDK, or ``default`` when the name it needs has moved."""
    try:
        return getter()
    except Exception:
        return default


def _process_failure_channel(view: sdk.WorkerView, recorder: Recorder,
                             errors: ErrorSink) -> sdk.ProcessFailureChannel:
    """Counts the SDK's logged job-process failures that belong to this worker.

    Several workers may share a process (and the SDK's logger): a failed process is ours
    when its pid is in our pool, a failed job when the server assigned it to us.
    """

    def report(reason: str, pid: int | None, job_id: str | None) -> None:
        if pid is not None and job_id is None and pid not in view.job_process_pids():
            return
        recorder.process_failed(reason, job_id)

    return sdk.ProcessFailureChannel(report, lambda: errors.report("job_events"))


class RunWatchdog:
    """Warns once when a worker runs but its run() never went through the exporter's hook.

    That happens when something held the old ``run`` method (``run = server.run`` taken
    before ``instrument()``) or the worker was started another way: the endpoint then
    serves every series at 0 with ``exporter_hooks_attached`` 0, and this says why.
    """

    def __init__(self, exporter: Exporter, view: sdk.WorkerView | None, grace: float) -> None:
        self._exporter = exporter
        self._view = view
        self._grace = grace
        self._stop = threading.Event()
        self.warned = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="livekit-agents-exporter-run-watchdog")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def _running(self) -> bool:
        view = self._view
        assert view is not None
        return bool(_read(lambda: view.running, False))

    def _run(self) -> None:
        running_since: float | None = None
        poll = min(1.0, self._grace / 4)
        while not self._stop.wait(poll):
            if self._exporter.worker is not None:
                return  # the hook ran
            now = time.monotonic()
            if self._view is not None:
                if not self._running():
                    running_since = None
                    continue
                running_since = running_since or now
                if now - running_since < self._grace:
                    continue
                logger.warning(
                    "livekit-agents-exporter: the worker has been running for %.0f s but its "
                    "run() never went through the exporter's hook, so nothing about it is "
                    "observed (livekit_agents_exporter_hooks_attached{hook=\"worker_run\"} 0). "
                    "Likely cause: something held the old run method, e.g. `run = server.run` "
                    "taken before instrument(), or the worker was started another way; call "
                    "instrument() before anything takes server.run", now - running_since)
            elif (since := self._exporter.unhooked_worker_since) is not None \
                    and now - since >= self._grace:
                logger.warning(
                    "livekit-agents-exporter: a worker has been running in this process for "
                    "%.0f s, but not one built from the instrumented WorkerOptions, so nothing "
                    "is observed (livekit_agents_exporter_hooks_attached{hook=\"worker_run\"} "
                    "0). Likely cause: the worker was built from other options or started "
                    "another way; pass the instrumented options object to cli.run_app()",
                    now - since)
            else:
                continue
            self.warned = True
            return


def instrument(
    target: Any,
    *,
    port: int | None = _UNSET,
    host: str | None = None,
    registry: CollectorRegistry | None = None,
    web_config: str | os.PathLike[str] | WebConfig | None = None,
) -> Exporter:
    """Export saturation metrics for ``target``: an AgentServer, a Worker or WorkerOptions.

    Serves ``/metrics`` on ``host:port`` (default ``0.0.0.0:10781``, or the
    ``LIVEKIT_AGENTS_EXPORTER_HOST`` / ``LIVEKIT_AGENTS_EXPORTER_PORT`` environment
    variables when set and the argument is not given). Pass ``registry`` to
    register the metrics in your own ``CollectorRegistry`` instead; then no endpoint is
    started unless ``port`` is given too. ``web_config`` is an exporter-toolkit web
    configuration file (the ``--web.config.file`` of Prometheus exporters) enabling TLS,
    client certificates and basic auth; a bad file raises ``ConfigError`` naming the file
    and the key. Must be called before the worker runs. Calling it again on the same
    target with the same arguments returns the same ``Exporter``; with different
    arguments it raises ``InstrumentationError``.

    In the SDK's own child processes (job processes, idle or running, the inference
    process), which import the user's main module again, it does nothing: it binds no
    port, starts no thread, touches neither ``target`` nor ``registry``, logs that at
    DEBUG and returns an inert ``Exporter`` (``active`` is False). The worker's process
    observes those jobs.
    """
    child = sdk.sdk_child_process()
    if child is not None:
        return _inert(child, registry)
    if port is _UNSET and registry is None and os.environ.get(PORT_ENV):
        port = _port_from_env(os.environ[PORT_ENV])
    host = host if host is not None else os.environ.get(HOST_ENV) or DEFAULT_HOST
    serve_port = (None if registry is not None else DEFAULT_PORT) if port is _UNSET else port
    web_key = (web_config.file if isinstance(web_config, WebConfig)
               else os.fspath(web_config) if web_config is not None else None)
    settings = {"port": serve_port, "host": host, "registry": id(registry) if registry else None,
                "web_config": web_key}
    existing: Exporter | None = getattr(target, _ATTR, None)
    if existing is not None and not existing.closed:  # after close(), instrument() anew
        if existing.settings == settings or (port is _UNSET and registry is None
                                              and web_config is None):
            return existing
        raise InstrumentationError(
            f"{type(target).__name__} is already instrumented with {existing.settings}; "
            "instrument() a worker once")
    kind = _kind_of(target)
    _check_target(target, kind)
    sdk.check_tested_range()
    if serve_port is not None and not 0 <= int(serve_port) <= 65535:
        raise InstrumentationError(f"port must be between 0 and 65535, got {serve_port}")
    if web_config is not None and serve_port is None:
        raise InstrumentationError("web_config secures the metrics endpoint, but none is served "
                                   "(registry given without port)")
    if web_config is not None and not isinstance(web_config, WebConfig):
        web_config = load_web_config(web_config)  # ConfigError names the file and the key

    # ``_created`` samples double the series count and no dashboard or rule uses them
    disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in prometheus_client
    own_registry = registry is None
    registry = registry if registry is not None else CollectorRegistry()
    if own_registry:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    server = None
    exporter = Exporter(registry, None, settings)
    exporter._users_registry = not own_registry
    exporter._target = target
    if serve_port is not None:
        server = MetricsServer(registry, host, int(serve_port), web_config=web_config,
                               on_error=exporter.errors.report, refresh=exporter.recorder.drain,
                               own_names=metrics.sample_names(process=own_registry))
        server.start()
        exporter.server = server
        _track_started(exporter)

    # every series exists from here on, under the agent name the target has now
    view = sdk.WorkerView(target) if kind == "worker" else None
    if view is not None:
        exporter.bind_series(_read(lambda: view.agent_name, ""),
                             _read(lambda: view.worker_type, ""))
    else:
        exporter.bind_series(str(target.agent_name or ""),
                             str(getattr(target.worker_type, "name", target.worker_type)))
    if kind == "options":
        _wrap_options(target, exporter)
        sdk.wrap_class_run(_attach_if_instrumented)
        _pending_options.add(exporter)
    else:
        sdk.wrap_instance_run(target, lambda: exporter.attach(target))
    exporter.watchdog = RunWatchdog(exporter, view, RUN_HOOK_GRACE_S)
    exporter.watchdog.start()
    setattr(target, _ATTR, exporter)
    return exporter


def _port_from_env(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise InstrumentationError(f"{PORT_ENV} must be a TCP port number, got {raw!r}") from None


def _inert(child: str, registry: CollectorRegistry | None) -> Exporter:
    reason = (f"instrument() called in the SDK's {child} (pid {os.getpid()}), which imported "
              "the main module again; the worker's process exports its metrics")
    logger.debug("livekit-agents-exporter: doing nothing: %s", reason)
    return Exporter(registry if registry is not None else CollectorRegistry(), None, {},
                    inert_reason=reason)


def _exporter_of_this_process() -> Exporter | None:
    """The exporter this process started and has not attached yet, if there is exactly one."""
    with _STARTED_LOCK:
        waiting = [e for e in _STARTED if e.worker is None]
    return waiting[0] if len(waiting) == 1 else None


def _track_started(exporter: Exporter) -> None:
    """Remember endpoints this process serves; hand them over if it turns into a reloader."""
    with _STARTED_LOCK:
        first = not _STARTED
        _STARTED.append(exporter)
    if first:
        sdk.on_dev_reloader_start(_hand_over_to_reloaded_worker)


def _hand_over_to_reloaded_worker() -> None:
    """This process is the dev-mode file watcher: its worker runs, instrumented, in a child.

    The watcher never runs a worker, so the endpoints it started would only hold the port
    the child needs; they are closed before the child starts.
    """
    with _STARTED_LOCK:
        idle = [e for e in _STARTED if e.worker is None]
        _STARTED[:] = [e for e in _STARTED if e.worker is not None]
    for exporter in idle:
        exporter.close()
        logger.info("livekit-agents-exporter: the SDK runs the dev worker in a child process; "
                    "%s is served from there", exporter.url)


def _wrap_options(opts: Any, exporter: Exporter) -> None:
    """Observed callbacks on options that ``cli.run_app`` will build a worker from.

    On LiveKit Cloud the SDK replaces any load_fnc that is not its default while it builds
    the worker (1.2) or starts it (1.3+): the user's is left as it is, for the SDK to handle.
    """
    if not sdk.cloud_from_environment():
        opts.load_fnc = exporter.observed_load_fnc(opts.load_fnc)
    opts.request_fnc = exporter.observed_request_fnc(opts.request_fnc)
    _exporter_of_handler[opts.request_fnc] = exporter
    if opts.entrypoint_fnc is not None and not isinstance(opts.entrypoint_fnc,
                                                          ObservedEntrypoint):
        opts.entrypoint_fnc = ObservedEntrypoint(opts.entrypoint_fnc)


def _attach_if_instrumented(worker: Any) -> None:
    """The class-level run hook: wire a worker built from instrumented options."""
    handler = sdk.request_fnc_built_with(worker)
    exporter = _exporter_of_handler.get(handler) if isinstance(handler, ObservedRequestFnc) \
        else None
    if exporter is None:  # options unpickled in a dev-mode child: their callbacks unwrapped
        exporter = getattr(sdk.options_of(worker), _ATTR, None)
    if isinstance(exporter, Exporter):
        if exporter.closed:
            return
        _pending_options.discard(exporter)
        exporter.attach(worker)
        return
    for pending in list(_pending_options):  # a worker runs, but not from those options
        if pending.worker is None and pending.unhooked_worker_since is None:
            pending.unhooked_worker_since = time.monotonic()


def _check_target(target: Any, kind: str) -> None:
    """Refuse what would make the exporter miss offers or break the SDK's load loop."""
    if kind == "options":
        check_load_fnc(target.load_fnc)
        return
    view = sdk.WorkerView(target)
    if _read(lambda: view.running, False):
        raise InstrumentationError(
            "the worker is already running: call instrument() before server.run() or "
            "cli.run_app(), so that no job offer goes unseen")
    load_fnc = _read(view.get_load_fnc, None)
    if load_fnc is not None:
        check_load_fnc(load_fnc)


def _kind_of(target: Any) -> str:
    if isinstance(target, sdk.WorkerOptions):
        return "options"
    if isinstance(target, sdk.WORKER_CLASS):
        return "worker"
    raise InstrumentationError(
        "instrument() takes an AgentServer, a Worker or WorkerOptions, "
        f"got {type(target).__name__}")

