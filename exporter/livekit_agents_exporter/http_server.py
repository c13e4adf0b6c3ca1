"""Serves ``/metrics`` from a small process of its own, fed with snapshots by the worker.

Why a separate process (docs/SECURITY_AND_RELIABILITY.md, "Design"): everything a client
on the pod network can make an HTTP server spend (memory, file descriptors, threads,
CPU time under the GIL) is then spent by a process with its own resource limits, never
by the worker that carries live calls, the way node_exporter is isolated by being its own
process. The worker keeps one thread here: it answers the endpoint's snapshot requests
with ``prometheus_client.generate_latest`` output, so a scrape sees every event that
happened before it, and it spends nothing on connections, parsing, TLS or bcrypt.

- The endpoint is ``python -m livekit_agents_exporter.endpoint_process`` started with
  ``subprocess`` (never ``multiprocessing``, which would re-import the user's main module).
  It binds the port itself and reports the outcome before ``start()`` returns, so a port
  in use raises ``ExporterStartError`` at ``instrument()``; the worker never holds the
  listening socket, so no forked child of the worker can hold it either.
- It dies with the worker: it exits when its end of the link reads EOF, and a process
  forked from the worker closes its copy of the link at once (``os.register_at_fork``).
  A forked process that runs the worker starts an endpoint of its own when the worker
  runs, retrying until the port is free.
- If the endpoint process dies, that is counted
  (``livekit_agents_exporter_errors_total{component="http_server"}``), logged, and it is
  started again with a backoff; the worker is never told.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from . import endpoint_link as link
from .safety import ErrorSink
from .web_config import WebConfig

logger = logging.getLogger("livekit_agents_exporter")

DEFAULT_PORT = 10781
DEFAULT_HOST = "0.0.0.0"
_RESTART_BACKOFF = (0.1, 30.0)  # first and longest wait before starting the endpoint again
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on what clients may cost the endpoint process (and so nothing of the worker)."""

    max_connections: int = 256
    eviction_grace: float = 0.0  # a connection is never dropped for a newcomer before this
    request_timeout: float = 10.0  # to deliver the first request line and headers
    keepalive_timeout: float = 10.0  # idle time between requests on one connection
    tls_handshake_timeout: float = 5.0
    max_line_size: int = 4096  # request line, e.g. "GET /metrics HTTP/1.1"
    max_field_size: int = 8190  # one header line
    max_headers: int = 64
    min_render_interval: float = 0.1  # the worker renders at most 10 snapshots a second
    snapshot_timeout: float = 10.0  # a scrape waits this long for the worker's snapshot
    memory_bytes: int = 512 << 20  # RLIMIT_AS of the endpoint process
    nice: int = 10  # the endpoint yields the CPU to the worker


class ExporterStartError(RuntimeError):
    """The metrics endpoint could not start; the message names the address and the cause."""


_SERVERS: weakref.WeakSet[MetricsServer] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for server in list(_SERVERS):
        server._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class MetricsServer:
    """The HTTP endpoint of one exporter, as seen from the worker."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        web_config: WebConfig | None = None,
        limits: ServerLimits | None = None,
        on_error: Callable[[str, str], None] | None = None,
        refresh: Callable[[], None] | None = None,
        own_names: tuple[str, ...] = (),
    ) -> None:
        self._registry = registry
        self.host = host
        self.port = port
        self.web_config = web_config
        self.limits = limits or ServerLimits()
        self._on_error = on_error or ErrorSink().report  # logs, rate limited
        self._refresh = refresh  # applies queued events before a (filtered) render
        self._own_names = own_names  # sample names still served when another collector raises
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._pid = os.getpid()
        self.restarts = 0
        self.snapshots = 0
        _SERVERS.add(self)

    @property
    def tls(self) -> bool:
        return self.web_config is not None and self.web_config.tls

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = "::1" if host == "::" else host
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}/metrics"

    @property
    def endpoint_pid(self) -> int | None:
        """Process id of the endpoint process serving right now (for tests and diagnostics)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        """Start the endpoint process; ``ExporterStartError`` if it cannot listen."""
        message = self._spawn()
        if message is not None:
            raise ExporterStartError(message)
        self._start_thread()

    def ensure_serving(self) -> None:
        """In a process forked after ``start()``: serve from here, once the port is free."""
        if self._pid == os.getpid() or self._stopping.is_set():
            return
        self._pid = os.getpid()
        self._start_thread(spawn_first=True)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            sock, proc = self._sock, self._proc
            self._sock = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()  # the endpoint reads EOF and exits
        if proc is not None:
            _reap(proc)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def _start_thread(self, spawn_first: bool = False) -> None:
        self._thread = threading.Thread(target=self._run, args=(spawn_first,), daemon=True,
                                        name="livekit-agents-exporter-http")
        self._thread.start()

    def _forget_after_fork(self) -> None:
        """In a forked child: drop the parent's link without touching the parent's endpoint."""
        sock, self._sock, self._proc, self._thread = self._sock, None, None, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        self._lock = threading.Lock()

    def _spawn(self) -> str | None:
        """Start one endpoint process and wait until it listens; the error message, or None."""
        ours, theirs = socket.socketpair()
        args = {"fd": theirs.fileno(), "host": self.host, "port": self.port,
                "web_config": self.web_config.file if self.web_config else None,
                "limits": asdict(self.limits), "parent": os.getpid()}
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_import_root_to_add(), env.get("PYTHONPATH")) if p)
        env.setdefault("MALLOC_ARENA_MAX", "2")  # keeps the address space under its limit
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "livekit_agents_exporter.endpoint_process",
                 json.dumps(args)],
                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        except OSError as exc:
            ours.close()
            return f"cannot start the metrics endpoint process: {exc.strerror or exc}"
        finally:
            theirs.close()
        ours.settimeout(START_TIMEOUT)
        try:
            kind, payload, _ = link.recv(ours)
        except (OSError, link.LinkClosed, ValueError):
            kind, payload = link.START_FAILED, {
                "message": f"cannot serve metrics on {self.host}:{self.port}: the endpoint "
                           "process ended before listening (see its message above)"}
        if kind != link.READY:
            ours.close()
            _reap(proc)
            return str(payload.get("message"))
        ours.settimeout(None)
        if self.port == 0:
            self.port = int(payload["port"])
        with self._lock:
            self._sock, self._proc = ours, proc
        if self._stopping.is_set():  # stop() ran while this one started
            self.stop()
        return None

    def _run(self, spawn_first: bool) -> None:
        """Serve snapshot requests; if the endpoint dies, count it and start another."""
        backoff = _RESTART_BACKOFF[0]
        need_spawn = spawn_first
        while not self._stopping.is_set():
            if need_spawn:
                message = self._spawn()
                if message is not None:
                    if not self._stopping.is_set():
                        self._report("http_server", message)
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, _RESTART_BACKOFF[1])
                    continue
                if self.restarts or spawn_first:
                    logger.warning("livekit-agents-exporter: metrics endpoint serving again on "
                                   "%s", self.url)
            began = time.monotonic()
            sock = self._sock
            if sock is not None:
                self._serve(sock)
            if self._stopping.is_set():
                return
            self._report("http_server", "the endpoint process ended")
            with self._lock:
                proc, self._proc, self._sock = self._proc, None, None
            if sock is not None:
                sock.close()
            if proc is not None:
                _reap(proc)
            self.restarts += 1
            if time.monotonic() - began > 60:
                backoff = _RESTART_BACKOFF[0]
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, _RESTART_BACKOFF[1])
            need_spawn = True

    def _serve(self, sock: socket.socket) -> None:
        while True:
            try:
                kind, payload, _ = link.recv(sock)
            except (OSError, link.LinkClosed, ValueError):
                return
            if kind == link.WANT:
                head, body = self._render(str(payload.get("accept", "")),
                                          [str(n) for n in payload.get("names", ())])
                head["id"] = payload.get("id")
                try:
                    link.send(sock, link.SNAPSHOT, head, body)
                except OSError:
                    return
            elif kind == link.LOG:
                logger.info("livekit-agents-exporter: %s", payload.get("message"))
            elif kind == link.ERROR:
                self._report(str(payload.get("component", "http_server")),
                             str(payload.get("detail", "")))

    def _render(self, accept: str, names: list[str]) -> tuple[dict[str, Any], bytes]:
        """One snapshot, rendered by prometheus_client itself."""
        try:
            if self._refresh is not None:
                self._refresh()
            encoder, content_type = choose_encoder(accept)
            registry: Any = self._registry.restricted_registry(names) if names else self._registry
            try:
                body = encoder(registry)
            except Exception:
                if not self._own_names:
                    raise
                # a collector that raises (someone else's, in a shared registry) costs its own
                # series only: the exporter's are rendered without it
                self._report("collector", "a collector raised; served the exporter's own series")
                wanted = [n for n in self._own_names if not names or n in names]
                body = encoder(self._registry.restricted_registry(wanted))
        except Exception:
            self._report("scrape", "rendering /metrics failed")
            return {"error": "error rendering metrics"}, b""
        self.snapshots += 1
        return {"content_type": content_type}, body

    def _report(self, component: str, detail: str = "") -> None:
        try:
            self._on_error(component, detail)
        except Exception:  # pragma: no cover - the sink itself failing
            pass


def _import_root_to_add() -> str | None:
    """Where the endpoint process must look to import this same copy, when it would not
    find it by itself (a source checkout, a path added at run time), else None.

    An installed package lives in one of the environment's site directories, which every
    interpreter of that environment searches already; putting a site directory on
    ``PYTHONPATH`` would move it ahead of the standard library in the endpoint process.
    """
    import site
    import sysconfig

    root = os.path.dirname(os.path.realpath(list(sys.modules[__package__].__path__)[0]))
    paths = sysconfig.get_paths()
    site_dirs = [*site.getsitepackages(), paths["purelib"], paths["platlib"]]
    if site.ENABLE_USER_SITE:
        site_dirs.append(site.getusersitepackages())
    return None if root in {os.path.realpath(d) for d in site_dirs} else root


def _reap(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
