"""Serves ``/metrics`` from its own thread and event loop, hardened for the pod network.

Scrapes must never run on the worker's event loop (a slow or hostile client would
stall job dispatch), so the endpoint is aiohttp's low-level server, a proven HTTP
stack that ships with livekit-agents anyway, on a private loop in a daemon thread.
Binding happens synchronously in ``start()`` so that a port in use is reported
before the worker starts.

What a client on the pod network can and cannot do (``ServerLimits``):

- only ``GET``/``HEAD`` on ``/metrics``, ``/`` and ``/healthz``; other methods get 405
  with ``Allow``, other paths 404; request line and headers are size-bounded by
  aiohttp's parser (400/431 beyond);
- a connection must deliver a complete request within ``request_timeout`` and is
  closed after ``keepalive_timeout`` idle, so slow clients (slowloris) cannot hold
  connections; at most ``max_connections`` are open at once, and when full the
  oldest connection that has waited ``eviction_grace`` without sending a request is
  dropped for the new one (else the new one is), so idle sockets cannot lock a
  scraper out for long nor eat the worker's file descriptors;
- TLS, client certificates, basic auth (bcrypt, cached, rate limited), extra headers
  and a request rate limit come from an exporter-toolkit web configuration file
  (``web_config.py``).

Nothing here may take the worker down: a collector that raises is skipped for that
scrape and counted, a handler that raises answers 500 and is counted, and if the
serving loop itself dies the thread logs it, counts it and serves again on the same
port (``livekit_agents_exporter_errors_total{component="http_server"}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import html
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from prometheus_client import CollectorRegistry

from .exposition import GuardedRegistry, choose_encoder
from .safety import ErrorSink
from .version import __version__
from .web_config import BasicAuth, TokenBucket, WebConfig

logger = logging.getLogger("livekit_agents_exporter")

DEFAULT_PORT = 10781
DEFAULT_HOST = "0.0.0.0"
KNOWN_PATHS = ("/", "/metrics", "/healthz")
ALLOWED_METHODS = ("GET", "HEAD")
_RESTART_BACKOFF = (0.1, 30.0)  # first and longest wait before serving again after a crash


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on what clients may cost the worker process."""

    max_connections: int = 256
    eviction_grace: float = 1.0  # a new connection is never dropped for a newer one before this
    request_timeout: float = 10.0  # to deliver the first request line and headers
    keepalive_timeout: float = 10.0  # idle time between requests on one connection
    tls_handshake_timeout: float = 10.0
    max_line_size: int = 4096  # request line, e.g. "GET /metrics HTTP/1.1"
    max_field_size: int = 8190  # one header line
    max_headers: int = 64


class ExporterStartError(RuntimeError):
    """The metrics endpoint could not start; the message names the address and the cause."""


def _landing_page() -> str:
    return (
        "<!doctype html><html><head><title>LiveKit Agents exporter</title></head><body>"
        "<h1>LiveKit Agents exporter</h1>"
        f"<p>Version {html.escape(__version__)}</p>"
        '<ul><li><a href="metrics">Metrics</a></li>'
        '<li><a href="healthz">Health</a></li></ul></body></html>'
    )


class _DebugOnly(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp logs every malformed request at ERROR with a traceback; a client sending
    garbage must not be able to flood the worker's log, so those records go to DEBUG."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)


class _Connections(web.Server):
    """aiohttp's low-level server plus a connection cap and a first-request deadline."""

    def __init__(self, handler: Any, limits: ServerLimits,
                 admit: Callable[[asyncio.Transport], bool], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._limits = limits
        self._admit = admit
        self._open = 0
        self._waiting: dict[RequestHandler, float] = {}  # connections yet to send a request
        self._evicted: set[RequestHandler] = set()
        self.evictions = 0
        self.refusals = 0

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._open += 1
        if not self._admit(transport):
            self._drop(handler)
            return
        now = self._loop.time()
        if self._open > self._limits.max_connections:
            # full: drop the connection that has waited longest without asking for anything,
            # if it had its chance; else the newcomer (churn stays bounded either way)
            oldest = next(iter(self._waiting), None)
            if oldest is not None and now - self._waiting[oldest] >= self._limits.eviction_grace:
                self._drop(oldest)
                self.evictions += 1
            else:
                self._drop(handler)
                self.refusals += 1
                return
        self._waiting[handler] = now
        self._loop.call_later(self._limits.request_timeout, self._expire, handler)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self._waiting.pop(handler, None)
        if handler in self._evicted:
            self._evicted.discard(handler)
        else:
            self._open -= 1
        super().connection_lost(handler, exc)

    def request_started(self, handler: RequestHandler) -> None:
        self._waiting.pop(handler, None)

    def _expire(self, handler: RequestHandler) -> None:
        if handler in self._waiting:
            self._drop(handler)

    def _drop(self, handler: RequestHandler) -> None:
        self._waiting.pop(handler, None)
        if handler not in self._evicted:
            self._evicted.add(handler)
            self._open -= 1
        transport = handler.transport
        if transport is not None:
            transport.abort()
        handler.force_close()


class MetricsServer:
    """The HTTP endpoint of one exporter."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        web_config: WebConfig | None = None,
        limits: ServerLimits | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._registry = registry
        self.host = host
        self.port = port
        self.web_config = web_config
        self.limits = limits or ServerLimits()
        self._on_error = on_error or ErrorSink().report  # logs, rate limited
        self._collection = GuardedRegistry(registry, self._report)
        self._auth: BasicAuth | None = web_config.authenticator() if web_config else None
        self._rate = (TokenBucket(*web_config.rate_limit)
                      if web_config and web_config.rate_limit else None)
        self._extra_headers = dict(web_config.headers) if web_config else {}
        self._allowed_sans = web_config.client_allowed_sans if web_config else frozenset()
        self._bcrypt_pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: _Connections | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._stopping = threading.Event()
        self.restarts = 0

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
    def connections(self) -> int:
        """Connections open right now (for tests and diagnostics)."""
        return self._server._open if self._server is not None else 0

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._supervise, args=(started,), name="livekit-agents-exporter-http",
            daemon=True)
        self._thread.start()
        try:
            started.result(timeout=30)
        except OSError as exc:
            self._thread.join(timeout=5)
            raise ExporterStartError(_describe_bind_error(self.host, self.port, exc)) from None

    def stop(self) -> None:
        self._stopping.set()
        loop, thread = self._loop, self._thread
        if thread is None or not thread.is_alive():
            return
        if loop is not None and loop.is_running():
            # racing a restart, the loop seen here may be closed, or be tearing down and cancel
            # what is queued on it; either way the supervisor sees _stopping and ends
            with contextlib.suppress(RuntimeError, TimeoutError, CancelledError):
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=10)
                loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if self._bcrypt_pool is not None:
            self._bcrypt_pool.shutdown(wait=False)

    def _supervise(self, started: Future[None]) -> None:
        """Serve; if the loop dies, count it, wait a little and serve again."""
        backoff = _RESTART_BACKOFF[0]
        while not self._stopping.is_set():
            loop = asyncio.new_event_loop()
            self._loop = loop
            began = time.monotonic()
            try:
                asyncio.set_event_loop(loop)
                loop.run_until_complete(self._bind())
                if not started.done():
                    started.set_result(None)
                else:
                    logger.warning("livekit-agents-exporter: metrics endpoint serving again on %s",
                                   self.url)
                loop.run_forever()
            except BaseException as exc:  # noqa: BLE001 - whatever it is, the worker lives on
                if not started.done():  # the first bind: start() raises a clear error
                    started.set_exception(exc)
                    _close_loop(loop)
                    return
                if not self._stopping.is_set():
                    self._report("http_server")
            finally:
                if not loop.is_closed():
                    self._teardown(loop)
            if self._stopping.is_set():
                return
            self.restarts += 1
            if time.monotonic() - began > 60:
                backoff = _RESTART_BACKOFF[0]
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, _RESTART_BACKOFF[1])

    def _teardown(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.run_until_complete(self._close())
        except BaseException:  # noqa: BLE001 - best effort on a loop that already failed
            pass
        _close_loop(loop)
        self._server = self._listener = None
        # A loop that died mid-iteration can leave sockets it had just accepted in tasks that
        # never ran; only the cycle collector closes those, and until it does their clients
        # wait for an answer that never comes. Crashes are rare, so collect now.
        gc.collect()

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_quiet_connection_errors)
        limits = self.limits
        # handler_cancellation: a client that goes away cancels its request (and a connection
        # dropped at admission never starts one)
        self._server = _Connections(
            self._handle, limits, self._admit, loop=loop, handler_cancellation=True,
            keepalive_timeout=limits.keepalive_timeout, max_line_size=limits.max_line_size,
            max_field_size=limits.max_field_size, max_headers=limits.max_headers,
            access_log=None, logger=_DebugOnly(logging.getLogger("livekit_agents_exporter.http")))
        ssl_context = self.web_config.ssl_context if self.web_config else None
        self._listener = await loop.create_server(
            self._server, self.host or None, self.port, ssl=ssl_context, reuse_address=True,
            backlog=128, ssl_handshake_timeout=limits.tls_handshake_timeout if ssl_context else None)
        if self.port == 0 and self._listener.sockets:
            self.port = self._listener.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._server is not None:
            await self._server.shutdown(timeout=2)

    def _report(self, component: str) -> None:
        try:
            self._on_error(component)
        except Exception:  # pragma: no cover - the sink itself failing
            pass

    # -- admission -----------------------------------------------------------------
    def _admit(self, transport: asyncio.Transport) -> bool:
        """Connection-level checks: the client certificate's SAN, when configured."""
        if not self._allowed_sans:
            return True
        cert = transport.get_extra_info("peercert") or {}
        names = {value for _kind, value in cert.get("subjectAltName", ())}
        return bool(names & self._allowed_sans)

    async def _authorized(self, request: web.BaseRequest) -> web.Response | None:
        """None when the request may proceed, else the 401/429 answer."""
        auth = self._auth
        if auth is None:
            return None
        creds = BasicAuth.parse(request.headers.get("Authorization"))
        if creds is not None:
            if auth.check_cached(*creds):
                return None
            if not auth.admit_uncached():
                return _text(429, "Too Many Requests\n", {"Retry-After": "1"})
            if self._bcrypt_pool is None:
                self._bcrypt_pool = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="livekit-agents-exporter-bcrypt")
            loop = asyncio.get_running_loop()
            if await loop.run_in_executor(self._bcrypt_pool, auth.verify, *creds):
                return None
        return _text(401, "Unauthorized\n",
                     {"WWW-Authenticate": 'Basic realm="livekit-agents-exporter"'})

    # -- requests ------------------------------------------------------------------
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if self._server is not None:
            self._server.request_started(request.protocol)
        try:
            response = await self._route(request)
        except Exception:
            self._report("http_handler")
            response = _text(500, "Internal Server Error\n")
        response.headers.update(self._extra_headers)
        return response

    async def _route(self, request: web.BaseRequest) -> web.Response:
        if self._rate is not None and not self._rate.allow():
            return _text(429, "Too Many Requests\n", {"Retry-After": "1"})
        denied = await self._authorized(request)
        if denied is not None:
            return denied
        handler = self._routes.get(request.path)
        if handler is None:
            return _text(404, "Not Found\n")
        if request.method not in ALLOWED_METHODS:
            return _text(405, "Method Not Allowed\n", {"Allow": ", ".join(ALLOWED_METHODS)})
        return await handler(self, request)

    async def _metrics(self, request: web.BaseRequest) -> web.Response:
        try:
            encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
            body = encoder(self._collection)
        except Exception:
            self._report("scrape")
            return _text(500, "error rendering metrics\n")
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _landing(self, request: web.BaseRequest) -> web.Response:
        return web.Response(text=_landing_page(), content_type="text/html")

    async def _health(self, request: web.BaseRequest) -> web.Response:
        return _text(200, "OK\n")

    _routes: dict[str, Callable[[MetricsServer, web.BaseRequest], Awaitable[web.Response]]] = {
        "/metrics": _metrics,
        "/": _landing,
        "/healthz": _health,
    }


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text, headers=headers)


def _quiet_connection_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Failed handshakes and resets from clients are the clients' problem: debug, not error.

    A port scanner or a plaintext client on the TLS port must not fill the worker's log.
    """
    exc = context.get("exception")
    if exc is None or isinstance(exc, (OSError, ConnectionError)):  # ssl.SSLError is an OSError
        logger.debug("livekit-agents-exporter: %s", context.get("message"), exc_info=exc)
        return
    loop.default_exception_handler(context)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
    except BaseException:  # noqa: BLE001
        pass
    loop.close()


def _describe_bind_error(host: str, port: int, exc: OSError) -> str:
    where = f"{host or '0.0.0.0'}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot serve metrics on {where}: port {port} is already in use; "
                "pick another port (port=... or --port)")
    if isinstance(exc, socket.gaierror):
        return f"cannot serve metrics on {where}: host {host!r} cannot be resolved"
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return f"cannot serve metrics on {where}: {host!r} is not an address of this machine"
    if exc.errno == errno.EACCES:
        return f"cannot serve metrics on {where}: permission denied for port {port}"
    return f"cannot serve metrics on {where}: {exc.strerror or exc}"
