"""Serves ``/metrics`` from its own thread and event loop.

Scrapes must never run on the worker's event loop (a slow or hostile client would
stall job dispatch), so the endpoint is an aiohttp server, a proven HTTP stack that
ships with livekit-agents anyway, on a private loop in a daemon thread. Binding
happens synchronously in ``start()`` so that a port in use is reported before the
worker starts.
"""

from __future__ import annotations

import asyncio
import errno
import html
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from .exposition import choose_encoder
from .version import __version__

logger = logging.getLogger("livekit_agents_exporter")

DEFAULT_PORT = 10781
DEFAULT_HOST = "0.0.0.0"
KNOWN_PATHS = ("/", "/metrics", "/healthz")


class ExporterStartError(RuntimeError):
    """The metrics endpoint could not start; the message names the address and the cause."""


def _landing_page(metrics_path: str) -> str:
    return (
        "<!doctype html><html><head><title>LiveKit Agents exporter</title></head><body>"
        "<h1>LiveKit Agents exporter</h1>"
        f"<p>Version {html.escape(__version__)}</p>"
        f'<ul><li><a href="{metrics_path}">Metrics</a></li>'
        '<li><a href="/healthz">Health</a></li></ul></body></html>'
    )


class MetricsServer:
    """The HTTP endpoint of one exporter."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        ssl_context: ssl.SSLContext | None = None,
        authorize: Callable[[web.Request], bool] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._registry = registry
        self.host = host
        self.port = port
        self._ssl = ssl_context
        self._authorize = authorize
        self._on_error = on_error or (lambda component: None)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl else "http"
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}/metrics"

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        started: Future[None] = Future()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name="livekit-agents-exporter-http", daemon=True
        )
        self._thread.start()
        try:
            started.result(timeout=30)
        except OSError as exc:
            self._thread.join(timeout=5)
            raise ExporterStartError(_describe_bind_error(self.host, self.port, exc)) from None

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    def _serve(self, started: Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._bind())
        except BaseException as exc:  # reported to start(), which raises a clear error
            started.set_exception(exc)
            loop.close()
            return
        started.set_result(None)
        try:
            loop.run_forever()
        except Exception:  # pragma: no cover - the loop itself dying
            logger.exception("livekit-agents-exporter: metrics endpoint stopped")
            self._on_error("http_server")
        finally:
            loop.close()

    async def _bind(self) -> None:
        app = web.Application(middlewares=[self._guard_middleware])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/", self._landing)
        app.router.add_get("/healthz", self._health)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host or None, self.port, ssl_context=self._ssl)
        await site.start()
        if self.port == 0:
            server = getattr(site, "_server", None)
            sockets = getattr(server, "sockets", None) or []
            if sockets:
                self.port = sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- handlers ------------------------------------------------------------------
    @web.middleware
    async def _guard_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self._authorize is not None and not self._authorize(request):
            return web.Response(
                status=401, text="Unauthorized\n",
                headers={"WWW-Authenticate": 'Basic realm="livekit-agents-exporter"'},
            )
        return await handler(request)

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
            body = encoder(self._registry)
        except Exception:
            logger.exception("livekit-agents-exporter: failed to render metrics")
            self._on_error("scrape")
            return web.Response(status=500, text="error rendering metrics\n")
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _landing(self, request: web.Request) -> web.Response:
        return web.Response(text=_landing_page("/metrics"), content_type="text/html")

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="OK\n")


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
