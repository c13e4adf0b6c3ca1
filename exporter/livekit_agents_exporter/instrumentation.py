"""``instrument()``: one call that makes a LiveKit Agents worker observable.

It accepts the three ways people run workers: an ``AgentServer`` (1.3+), a legacy
``Worker`` (1.0-1.2) and the ``WorkerOptions`` handed to ``cli.run_app`` (where the
user never holds the worker). The metrics endpoint starts immediately, so a bad
address fails before the worker does; the hooks are wired when the worker starts
running, once its agent name, callbacks and dev/prod mode are final.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from . import metrics as m
from . import sdk
from .http_server import DEFAULT_HOST, DEFAULT_PORT, MetricsServer
from .job_probe import (
    JobEventHandler,
    ObservedEntrypoint,
    install_job_event_handler,
    remove_job_event_handler,
)
from .load_probe import InstrumentationError, ObservedLoadFnc, check_load_fnc
from .process_stats import ProcessStats
from .recorder import DrainThread, Recorder
from .request_probe import ObservedRequestFnc
from .safety import ErrorSink
from .version import __version__
from .web_config import WebConfig, load_web_config
from .wire_tap import WireTap

_ATTR = "_livekit_agents_exporter"
_UNSET: Any = object()


class Exporter:
    """Handle returned by ``instrument()``: the registry, the endpoint, and ``close()``."""

    def __init__(self, registry: CollectorRegistry, server: MetricsServer | None,
                 settings: dict[str, Any]) -> None:
        self.registry = registry
        self.server = server
        self.settings = settings
        self.errors = ErrorSink()
        self.recorder = Recorder(registry, self.errors)
        self.worker: Any = None
        self._tap: WireTap | None = None
        self._job_events: JobEventHandler | None = None
        self._drain: DrainThread | None = None

    @property
    def url(self) -> str | None:
        """Where ``/metrics`` is served, or None when only a registry was given."""
        return self.server.url if self.server else None

    # -- wiring --------------------------------------------------------------------
    def wrap_callbacks(self, load_fnc: Callable[..., float] | None,
                       request_fnc: Callable[..., Any] | None,
                       entrypoint: Callable[..., Any] | None) -> tuple[Any, Any, Any]:
        """Observed versions of the user's callbacks (the SDK defaults when None)."""
        if not isinstance(load_fnc, ObservedLoadFnc) and _should_wrap_load(load_fnc):
            load_fnc = ObservedLoadFnc(load_fnc or sdk.DEFAULT_LOAD_FNC, self.recorder, self.errors)
            load_fnc.owner = self
        if not isinstance(request_fnc, ObservedRequestFnc):
            request_fnc = ObservedRequestFnc(
                request_fnc or _default_request_fnc(), self.recorder, self.errors)
        if entrypoint is not None and not isinstance(entrypoint, ObservedEntrypoint):
            entrypoint = ObservedEntrypoint(entrypoint)
        return load_fnc, request_fnc, entrypoint

    def attach(self, worker: Any) -> None:
        """Wire the hooks into a worker that is about to run."""
        if self.worker is not None:
            if self.worker is worker:
                return
            raise InstrumentationError(
                "these WorkerOptions were instrumented once and already run by another worker; "
                "call instrument() again for each worker")
        view = sdk.WorkerView(worker)
        load_fnc, request_fnc, entrypoint = self.wrap_callbacks(
            view.get_load_fnc(), view.get_request_fnc(), view.get_entrypoint())
        if load_fnc is not None:
            view.set_load_fnc(load_fnc)
        view.set_request_fnc(request_fnc)
        if entrypoint is not None:
            view.set_entrypoint(entrypoint)
        self._tap = WireTap(view, self.recorder, self.errors)
        self._tap.install()
        stats = ProcessStats(view.job_process_pids)
        self.recorder.bind(
            view.agent_name,
            {"worker_type": view.worker_type, "sdk_version": sdk.SDK_VERSION,
             "exporter_version": __version__},
            {
                "worker_load_threshold_ratio": view.load_threshold,
                "worker_effective_load_ratio": view.effective_load,
                "worker_draining": view.draining,
                "worker_active_jobs": view.active_jobs,
                "job_processes": stats.count,
                "job_processes_resident_memory_bytes": stats.total_rss,
                "job_process_max_resident_memory_bytes": stats.max_rss,
                "job_memory_limit_bytes": view.memory_limit_bytes,
            },
        )
        self._job_events = JobEventHandler(self.recorder, self.errors)
        install_job_event_handler(self._job_events)
        self._drain = DrainThread(self.recorder, self.errors)
        self._drain.start()
        if self.server is not None:
            self.server.ensure_serving()  # a process forked after instrument() serves itself
        self.worker = worker

    def close(self) -> None:
        """Stop serving and remove the hooks' side effects (the worker keeps running)."""
        if self.server is not None:
            self.server.stop()
        if self._job_events is not None:
            remove_job_event_handler(self._job_events)
            self._job_events = None
        if self._drain is not None:
            self._drain.stop()
            self._drain = None


def _default_request_fnc() -> Callable[..., Any]:
    from livekit.agents import worker as worker_mod

    return worker_mod._default_request_fnc


def _should_wrap_load(load_fnc: Callable[..., float] | None) -> bool:
    """On LiveKit Cloud the SDK replaces any custom load_fnc with its default: leave it be."""
    is_default = load_fnc is None or load_fnc == sdk.DEFAULT_LOAD_FNC
    return not (is_default and os.environ.get("LIVEKIT_WORKER_TOKEN"))


def instrument(
    target: Any,
    *,
    port: int | None = _UNSET,
    host: str = DEFAULT_HOST,
    registry: CollectorRegistry | None = None,
    web_config: str | os.PathLike[str] | WebConfig | None = None,
) -> Exporter:
    """Export saturation metrics for ``target``: an AgentServer, a Worker or WorkerOptions.

    Serves ``/metrics`` on ``host:port`` (default ``0.0.0.0:10781``). Pass ``registry`` to
    register the metrics in your own ``CollectorRegistry`` instead; then no endpoint is
    started unless ``port`` is given too. ``web_config`` is an exporter-toolkit web
    configuration file (the ``--web.config.file`` of Prometheus exporters) enabling TLS,
    client certificates and basic auth; a bad file raises ``ConfigError`` naming the file
    and the key. Must be called before the worker runs. Calling it again on the same
    target with the same arguments returns the same ``Exporter``; with different
    arguments it raises ``InstrumentationError``.
    """
    serve_port = (None if registry is not None else DEFAULT_PORT) if port is _UNSET else port
    web_key = (web_config.file if isinstance(web_config, WebConfig)
               else os.fspath(web_config) if web_config is not None else None)
    settings = {"port": serve_port, "host": host, "registry": id(registry) if registry else None,
                "web_config": web_key}
    existing: Exporter | None = getattr(target, _ATTR, None)
    if existing is not None:
        if existing.settings == settings or (port is _UNSET and registry is None
                                              and web_config is None):
            return existing
        raise InstrumentationError(
            f"{type(target).__name__} is already instrumented with {existing.settings}; "
            "instrument() a worker once")
    kind = _kind_of(target)
    _check_target(target, kind)
    if serve_port is not None and not 0 <= int(serve_port) <= 65535:
        raise InstrumentationError(f"port must be between 0 and 65535, got {serve_port}")
    if web_config is not None and serve_port is None:
        raise InstrumentationError("web_config secures the metrics endpoint, but none is served "
                                   "(registry given without port)")
    if web_config is not None and not isinstance(web_config, WebConfig):
        web_config = load_web_config(web_config)  # ConfigError names the file and the key

    # ``_created`` samples double the series count and no dashboard or rule uses them
    disable_created_metrics()
    own_registry = registry is None
    registry = registry if registry is not None else CollectorRegistry()
    if own_registry:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    server = None
    exporter = Exporter(registry, None, settings)
    if serve_port is not None:
        server = MetricsServer(registry, host, int(serve_port), web_config=web_config,
                               on_error=exporter.errors.report, refresh=exporter.recorder.drain,
                               own_names=m.sample_names(process=own_registry))
        server.start()
        exporter.server = server

    if kind == "options":
        load_fnc, request_fnc, entrypoint = exporter.wrap_callbacks(
            target.load_fnc, target.request_fnc, target.entrypoint_fnc)
        if not isinstance(load_fnc, ObservedLoadFnc):  # LiveKit Cloud: keep the SDK default
            load_fnc = _OwnerTag(load_fnc, exporter)
        target.load_fnc, target.request_fnc, target.entrypoint_fnc = (
            load_fnc, request_fnc, entrypoint)
        _patch_worker_class_run()
    else:
        _patch_instance_run(target, exporter)
    setattr(target, _ATTR, exporter)
    return exporter


class _OwnerTag:
    """Marks options whose load_fnc must stay the SDK default, so the run hook still finds them."""

    def __init__(self, fn: Callable[..., float], owner: Exporter) -> None:
        self.wrapped, self.owner = fn, owner

    def __call__(self, worker: Any = None) -> float:
        return self.wrapped(worker)


def _check_target(target: Any, kind: str) -> None:
    """Refuse what would make the exporter miss offers or break the SDK's load loop."""
    if kind == "options":
        check_load_fnc(target.load_fnc)
        return
    view = sdk.WorkerView(target)
    if view.running:
        raise InstrumentationError(
            "the worker is already running: call instrument() before server.run() or "
            "cli.run_app(), so that no job offer goes unseen")
    if view.get_load_fnc() is not None:
        check_load_fnc(view.get_load_fnc())


def _kind_of(target: Any) -> str:
    if isinstance(target, sdk.WorkerOptions):
        return "options"
    if isinstance(target, sdk.WORKER_CLASS):
        return "worker"
    raise InstrumentationError(
        f"instrument() takes an AgentServer, a Worker or WorkerOptions, got {type(target).__name__}")


def _patch_instance_run(worker: Any, exporter: Exporter) -> None:
    original = worker.run

    async def run(*args: Any, **kwargs: Any) -> Any:
        exporter.attach(worker)
        return await original(*args, **kwargs)

    worker.run = run


def _patch_worker_class_run() -> None:
    """Wire workers that ``cli.run_app`` builds from instrumented options.

    Installed once; for a worker whose load_fnc carries no exporter it does nothing.
    """
    cls = sdk.WORKER_CLASS
    if getattr(cls.run, "_livekit_agents_exporter_hook", False):
        return
    original = cls.run

    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(sdk.find_pending_worker_owner(self), "owner", None)
        if isinstance(owner, Exporter):
            owner.attach(self)
        return await original(self, *args, **kwargs)

    run._livekit_agents_exporter_hook = True  # type: ignore[attr-defined]
    cls.run = run
