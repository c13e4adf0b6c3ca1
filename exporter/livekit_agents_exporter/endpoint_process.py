"""The metrics endpoint process: HTTP(S) for ``/metrics``, with the worker's snapshots.

Started by ``http_server.MetricsServer`` as ``python -m livekit_agents_exporter.endpoint_process``;
not for users. It binds the port, reports the outcome on the link, and then serves with
aiohttp's HTTP server under the bounds of ``ServerLimits``, inside its own resource limits
(address space, file descriptors, a lower CPU priority). What a client can make it spend
stays here: at worst this process is restarted, the worker never notices
(docs/SECURITY_AND_RELIABILITY.md).

- Connections are counted from the TCP accept, TLS handshakes included (TLS is started on
  an accepted connection, ``loop.start_tls``). Past ``max_connections`` a connection of the
  client address holding the most, the one idle the longest (no request in progress), is
  dropped for the newcomer: idle, slow or keep-alive clients cannot lock a scraper out.
  A periodic sweep closes connections idle beyond their deadline; no timer per connection.
- A scrape waits for a snapshot requested after it arrived; equal scrapes share one, and
  the worker renders at most one per ``min_render_interval`` after a short burst.
- The web configuration and the files it names are re-read when they change; a broken
  new version keeps the last good one and is reported (component ``web_config``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import gzip
import html
import itertools
import json
import logging
import os
import resource
import socket
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.http import HttpVersion10, HttpVersion11

from . import endpoint_link as link
from .version import __version__

KNOWN_PATHS = ("/", "/metrics", "/healthz")
ALLOWED_METHODS = ("GET", "HEAD")
SERVER_HEADER = "livekit-agents-exporter"  # the product, never its version or its stack
MAX_NAMES = 64  # name[] parameters honoured per scrape
MAX_FILTERED_PENDING = 8  # distinct name[] filters waiting for a snapshot at once
ACCEPT_BATCH = 32
LISTEN_BACKLOG = 4096  # Linux caps it at net.core.somaxconn
RENDER_BURST = 5  # snapshots the worker renders back to back before the spacing applies
SWEEP_EVERY = 0.25
WATCH_EVERY = 1.0
_FAIR_QUEUE = 4  # bcrypt checks one client address may have waiting

logger = logging.getLogger("livekit_agents_exporter.endpoint")


@dataclass
class Limits:
    max_connections: int
    eviction_grace: float
    request_timeout: float
    keepalive_timeout: float
    tls_handshake_timeout: float
    max_line_size: int
    max_field_size: int
    max_headers: int
    min_render_interval: float
    snapshot_timeout: float
    memory_bytes: int
    nice: int


class Link:
    """The endpoint's end of the link to the worker."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock, self.loop = sock, loop
        self.closed = asyncio.Event()
        self._waiting: dict[int, asyncio.Future[tuple[dict[str, Any], bytes]]] = {}
        self._ids = itertools.count(1)

    async def send(self, kind: bytes, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        with contextlib.suppress(OSError):
            await self.loop.sock_sendall(self.sock, link._HEAD.pack(kind, len(data)) + data)

    def report(self, component: str, detail: str = "") -> None:
        """Count and log an endpoint failure in the worker (fire and forget)."""
        self.loop.create_task(self.send(link.ERROR, {"component": component,
                                                     "detail": detail[:300]}))

    async def want(self, accept: str, names: list[str]) -> tuple[dict[str, Any], bytes]:
        ident = next(self._ids)
        fut = self.loop.create_future()
        self._waiting[ident] = fut
        try:
            await self.send(link.WANT, {"id": ident, "accept": accept, "names": names})
            snapshot: tuple[dict[str, Any], bytes] = await fut
            return snapshot
        finally:
            self._waiting.pop(ident, None)

    async def read_forever(self) -> None:
        try:
            while True:
                kind, length = link.header(await self._exactly(link.HEADER_SIZE))
                if length > link.MAX_FRAME:
                    return
                kind, payload, body = link.decode(kind, await self._exactly(length))
                fut = self._waiting.get(int(payload.get("id") or 0))
                if kind == link.SNAPSHOT and fut is not None and not fut.done():
                    fut.set_result((payload, body))
        except (OSError, EOFError, ValueError):
            return
        finally:
            self.closed.set()

    async def _exactly(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = await self.loop.sock_recv(self.sock, min(left, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


class Snapshots:
    """Fresh snapshots from the worker, shared by equal scrapes, spaced in time."""

    def __init__(self, link_: Link, limits: Limits) -> None:
        self._link, self._limits = link_, limits
        self._pending: OrderedDict[tuple[str, tuple[str, ...]], tuple[
            asyncio.Future[tuple[dict[str, Any], bytes]], str]] = OrderedDict()
        self._wake = asyncio.Event()
        self._last = 0.0
        self._tokens = float(RENDER_BURST)

    def get(self, accept: str, names: list[str]
            ) -> asyncio.Future[tuple[dict[str, Any], bytes]] | None:
        """A future snapshot taken after now; None when too many filters are waiting."""
        from prometheus_client.exposition import choose_encoder

        key = (choose_encoder(accept)[1], tuple(sorted(set(names))))
        entry = self._pending.get(key)
        if entry is None:
            if names and sum(1 for k in self._pending if k[1]) >= MAX_FILTERED_PENDING:
                return None
            entry = (asyncio.get_running_loop().create_future(), accept)
            self._pending[key] = entry
            self._wake.set()
        return entry[0]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                # a token bucket: bursts of RENDER_BURST, then one per min_render_interval
                interval = self._limits.min_render_interval
                now = loop.time()
                self._tokens = min(RENDER_BURST, self._tokens + (now - self._last) / interval)
                self._last = now
                if self._tokens < 1:
                    await asyncio.sleep((1 - self._tokens) * interval)
                    self._tokens, self._last = 1.0, loop.time()
                self._tokens -= 1
                key, (fut, accept) = self._pending.popitem(last=False)
                try:
                    result = await asyncio.wait_for(self._link.want(accept, list(key[1])),
                                                    self._limits.snapshot_timeout)
                except asyncio.TimeoutError:
                    result = ({"error": "the worker did not answer in time"}, b"")
                if not fut.done():
                    fut.set_result(result)


class Conn:
    """One accepted connection, as the cap and the sweep see it."""

    __slots__ = ("transport", "idle_since", "busy_since", "requests", "eof", "heard", "peer")

    def __init__(self, transport: asyncio.Transport, now: float, peer: str) -> None:
        self.transport = transport
        self.peer = peer
        self.heard = False  # the client sent something: silent sockets are dropped first
        self.idle_since = now
        self.busy_since: float | None = None
        self.requests = 0
        self.eof = False


class Tracker:
    """Every open connection, from accept to close, and the cap on them."""

    def __init__(self, limits: Limits, loop: asyncio.AbstractEventLoop) -> None:
        self.limits, self.loop = limits, loop
        self.conns: dict[int, Conn] = {}
        self.per_peer: dict[str, int] = {}
        self.evictions = self.refusals = 0

    def admit(self, transport: asyncio.Transport) -> Conn | None:
        now = self.loop.time()
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if peername else ""
        if len(self.conns) >= self.limits.max_connections:
            victim = self._victim(now)
            if victim is not None:
                self.close(victim)
                self.evictions += 1
            else:
                transport.abort()
                self.refusals += 1
                return None
        conn = Conn(transport, now, peer)
        self.conns[id(conn)] = conn
        self.per_peer[peer] = self.per_peer.get(peer, 0) + 1
        return conn

    def _victim(self, now: float) -> Conn | None:
        """The connection to drop for a newcomer: from the client address holding the most
        connections (a flood comes from few addresses, the scraper holds one), the one idle
        the longest, silent ones first; None when every connection is serving a request."""
        idle = [c for c in self.conns.values()
                if c.busy_since is None and now - c.idle_since >= self.limits.eviction_grace]
        if not idle:
            return None
        top = max(self.per_peer.get(c.peer, 0) for c in idle)
        return min((c for c in idle if self.per_peer.get(c.peer, 0) == top),
                   key=lambda c: (c.heard, c.idle_since))

    def close(self, conn: Conn) -> None:
        self.forget(conn)
        conn.transport.abort()

    def forget(self, conn: Conn | None) -> None:
        if conn is not None and self.conns.pop(id(conn), None) is not None:
            left = self.per_peer.get(conn.peer, 1) - 1
            if left > 0:
                self.per_peer[conn.peer] = left
            else:
                self.per_peer.pop(conn.peer, None)

    def sweep(self) -> None:
        now, lim = self.loop.time(), self.limits
        for conn in list(self.conns.values()):
            if conn.busy_since is not None:
                if now - conn.busy_since > lim.snapshot_timeout + lim.request_timeout:
                    self.close(conn)
                continue
            deadline = lim.request_timeout if conn.requests == 0 else lim.keepalive_timeout
            if conn.eof or now - conn.idle_since > deadline:
                self.close(conn)


class Handler(web.RequestHandler):
    """aiohttp's connection handler, with answers to broken requests that echo nothing."""

    conn: Conn | None = None
    endpoint: Endpoint
    tls = False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.endpoint.tracker.forget(self.conn)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn is not None:
            self.conn.heard = True
        super().data_received(data)

    def eof_received(self) -> bool:  # type: ignore[override]  # asyncio lets it return bool
        # a client that sent its request and half-closed still gets its answer
        if self.conn is not None:
            self.conn.eof = True
        return not self.tls  # (TLS cannot half-close; asyncio warns if asked to)

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None
                     ) -> web.StreamResponse:
        if status >= 500:
            self.endpoint.link.report("http_handler", type(exc).__name__ if exc else "")
        return plain(status if status in (400, 413, 414, 431) or status >= 500 else 400,
                     close=True)


def plain(status: int, headers: dict[str, str] | None = None, *, close: bool = False,
          text: str | None = None) -> web.Response:
    from http import HTTPStatus

    reason = HTTPStatus(status).phrase
    resp = web.Response(status=status, text=(text if text is not None else reason + "\n"),
                        headers=headers)
    resp.headers["Server"] = SERVER_HEADER
    if close:
        resp.force_close()
    return resp


class Endpoint:
    """The HTTP side: admission, routes, auth, the live web configuration."""

    def __init__(self, limits: Limits, link_: Link, settings: Settings,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.limits, self.link, self.settings, self.loop = limits, link_, settings, loop
        self.tracker = Tracker(limits, loop)
        self.snapshots = Snapshots(link_, limits)
        self._bcrypt = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bcrypt")
        # what web.Server hands each RequestHandler it makes; kept here because our handlers
        # are made by new_handler() (the accept path), with the same settings
        self.handler_settings: dict[str, Any] = dict(
            keepalive_timeout=limits.keepalive_timeout,
            max_line_size=limits.max_line_size, max_field_size=limits.max_field_size,
            max_headers=limits.max_headers, access_log=None,
            logger=_Quiet(logging.getLogger("livekit_agents_exporter.endpoint.http")))
        self.server = web.Server(
            self._handle, request_factory=self._make_request, handler_cancellation=True,
            loop=loop, **self.handler_settings)

    # -- connections ---------------------------------------------------------------------
    def protocol(self) -> asyncio.Protocol:
        return _Accepted(self)

    def new_handler(self, conn: Conn) -> Handler:
        handler = Handler(self.server, loop=self.loop, **self.handler_settings)
        handler.conn, handler.endpoint = conn, self
        return handler

    def _make_request(self, message: Any, payload: Any, protocol: Any, writer: Any,
                      task: Any) -> web.BaseRequest:
        # a version this server does not speak is answered in HTTP/1.1, never echoed
        bogus = message.version not in (HttpVersion10, HttpVersion11)
        if bogus:
            message = message._replace(version=HttpVersion11, should_close=True)
        request = web.BaseRequest(message, payload, protocol, writer, task, self.loop)
        request["bogus_version"] = bogus
        return request

    # -- requests ------------------------------------------------------------------------
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        conn: Conn | None = getattr(request.protocol, "conn", None)
        if conn is not None:
            conn.busy_since = self.loop.time()
            conn.requests += 1
        try:
            response = await self._route(request)
        except Exception as exc:  # noqa: BLE001 - a bug here answers 500, counted
            self.link.report("http_handler", type(exc).__name__)
            response = plain(500)
        finally:
            if conn is not None:
                conn.busy_since = None
                conn.idle_since = self.loop.time()
        response.headers.update(self.settings.headers)
        response.headers["Server"] = SERVER_HEADER
        if (conn is not None and conn.eof) or request.body_exists:
            response.force_close()
        return response

    async def _route(self, request: web.BaseRequest) -> web.Response:
        if request["bogus_version"]:
            return plain(505, close=True)
        settings = self.settings
        if settings.rate is not None and not settings.rate.allow():
            return plain(429, {"Retry-After": "1"})
        if settings.auth is not None:
            denied = await self._authorized(request, settings)
            if denied is not None:
                return denied
        route = ROUTES.get(request.path)
        if route is None:
            return plain(404)
        if request.method not in ALLOWED_METHODS:
            return plain(405, {"Allow": ", ".join(ALLOWED_METHODS)})
        return await route(self, request)

    async def _authorized(self, request: web.BaseRequest, settings: Settings
                          ) -> web.Response | None:
        from .web_config import BasicAuth

        creds = BasicAuth.parse(request.headers.get("Authorization"))
        if creds is not None:
            verdict = await settings.gate.check(creds[0], creds[1], request.remote or "")
            if verdict == "ok":
                return None
            if verdict == "busy":
                return plain(429, {"Retry-After": "1"})
        return plain(401, {"WWW-Authenticate": 'Basic realm="livekit-agents-exporter"'})

    async def metrics(self, request: web.BaseRequest) -> web.Response:
        names = request.query.getall("name[]", [])[:MAX_NAMES]
        future = self.snapshots.get(request.headers.get("Accept", ""), names)
        if future is None:
            return plain(503, {"Retry-After": "1"})
        head, body = await asyncio.shield(future)
        if "error" in head:
            return plain(503, {"Retry-After": "1"}, text=str(head["error"]) + "\n")
        headers = {"Content-Type": str(head["content_type"])}
        if _wants_gzip(request.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
        return web.Response(body=body, headers=headers)

    async def landing(self, request: web.BaseRequest) -> web.Response:
        page = ("<!doctype html><html><head><title>LiveKit Agents exporter</title></head><body>"
                "<h1>LiveKit Agents exporter</h1>"
                f"<p>Version {html.escape(__version__)}</p>"
                '<ul><li><a href="metrics">Metrics</a></li>'
                '<li><a href="healthz">Health</a></li></ul></body></html>')
        return web.Response(text=page, content_type="text/html")

    async def health(self, request: web.BaseRequest) -> web.Response:
        return plain(200, text="OK\n")

    # -- background ----------------------------------------------------------------------
    async def sweep_forever(self, parent: int) -> None:
        collected_at = self.loop.time()
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            self.tracker.sweep()
            if os.getppid() != parent:  # the worker is gone (and the link with it)
                self.link.closed.set()
            if self.loop.time() - collected_at > 10:
                # failed parses leave reference cycles holding read buffers: free them
                gc.collect()
                collected_at = self.loop.time()

    async def watch_config(self, path: str) -> None:
        from .web_config import load_web_config, watched_state

        state = await self.loop.run_in_executor(None, watched_state, self.settings.files)
        while True:
            await asyncio.sleep(WATCH_EVERY)
            now = await self.loop.run_in_executor(None, watched_state, self.settings.files)
            if now == state:
                continue
            state = now
            try:
                config = await self.loop.run_in_executor(None, load_web_config, path)
            except Exception as exc:  # ConfigError names the file and the key, never a secret
                self.link.report("web_config", f"{exc}; still serving with the last good "
                                               "configuration")
                continue
            self.settings = Settings.of(config, self._bcrypt)
            state = await self.loop.run_in_executor(None, watched_state, self.settings.files)
            await self.link.send(link.LOG, {"message": f"reloaded the web configuration {path}"})


ROUTES: dict[str, Callable[[Endpoint, web.BaseRequest], Awaitable[web.Response]]] = {
    "/metrics": Endpoint.metrics,
    "/": Endpoint.landing,
    "/healthz": Endpoint.health,
}


def _wants_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() == "gzip":
            q = params.strip()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"))
    return False


class _Accepted(asyncio.Protocol):
    """First protocol of every connection: counts it, then hands it to HTTP (after TLS)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.conn: Conn | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)  # what a TCP server's loop hands over
        ep = self.endpoint
        conn = ep.tracker.admit(transport)
        if conn is None:
            return
        self.conn = conn
        settings = ep.settings
        handler = ep.new_handler(conn)
        if settings.ssl_context is None:
            transport.set_protocol(handler)
            handler.connection_made(transport)
            return
        handler.tls = True
        transport.pause_reading()  # the ClientHello is for the TLS layer, read after start_tls
        self.task = ep.loop.create_task(self._start_tls(transport, handler, settings))

    async def _start_tls(self, transport: Any, handler: Handler, settings: Settings) -> None:
        ep, conn = self.endpoint, self.conn
        assert conn is not None
        try:
            tls = await ep.loop.start_tls(transport, handler, settings.ssl_context,
                                          server_side=True,
                                          ssl_handshake_timeout=ep.limits.tls_handshake_timeout)
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - the client's problem
            ep.tracker.forget(conn)
            transport.abort()
            return
        if tls is None:
            ep.tracker.forget(conn)
            return
        if settings.allowed_sans and not _san_allowed(tls, settings.allowed_sans):
            ep.tracker.forget(conn)
            tls.abort()
            return
        conn.transport, conn.heard = tls, True
        handler.connection_made(tls)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.endpoint.tracker.forget(self.conn)
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:  # reading is paused until TLS starts
        pass


def _san_allowed(transport: Any, allowed: frozenset[str]) -> bool:
    cert = transport.get_extra_info("peercert") or {}
    return bool({value for _kind, value in cert.get("subjectAltName", ())} & allowed)


class _Quiet(logging.LoggerAdapter):  # type: ignore[type-arg]  # generic in typeshed only
    """aiohttp logs every malformed request at ERROR; clients must not be able to flood logs."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)


@dataclass
class Settings:
    """What the web configuration decides, swapped as a whole when it changes."""

    ssl_context: Any = None
    allowed_sans: frozenset[str] = frozenset()
    auth: Any = None
    gate: Any = None
    rate: Any = None
    headers: dict[str, str] | None = None
    files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.headers = self.headers or {}

    @classmethod
    def of(cls, config: Any, pool: ThreadPoolExecutor) -> Settings:
        from .web_config import AuthGate, TokenBucket

        if config is None:
            return cls()
        auth = config.authenticator()
        return cls(ssl_context=config.ssl_context, allowed_sans=config.client_allowed_sans,
                   auth=auth, gate=AuthGate(auth, pool, _FAIR_QUEUE) if auth else None,
                   rate=TokenBucket(*config.rate_limit) if config.rate_limit else None,
                   headers=dict(config.headers), files=config.watched_files)


# -- process setup ---------------------------------------------------------------------------
def listening_sockets(host: str, port: int) -> list[socket.socket]:
    """Bound, listening sockets; ``::`` (or an empty host) is dual-stack where possible."""
    if host in ("", "::") and socket.has_ipv6:
        try:
            return [_listen(socket.AF_INET6, ("::", port), dual=True)]
        except OSError as exc:
            if exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL) or host == "::":
                raise
        host = "0.0.0.0"
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    return [_listen(family, address)]


def _listen(family: int, address: Any, dual: bool = False) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual else 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def describe_bind_error(host: str, port: int, exc: OSError) -> str:
    where = f"[{host}]:{port}" if ":" in host else f"{host or '0.0.0.0'}:{port}"
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


def _limit_resources(limits: Limits) -> None:
    # the cap acts long before accept() could fail: asyncio accepts a batch before the cap
    # sees it, and closes what the cap drops one loop iteration later. (An EMFILE would make
    # asyncio stop accepting for a second and listen again with the short batch backlog.)
    nofile = limits.max_connections + 4 * ACCEPT_BATCH + 64
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    if limits.memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    if limits.nice:
        with contextlib.suppress(OSError):
            os.nice(limits.nice)


async def serve(args: dict[str, Any], link_sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    limits = Limits(**args["limits"])
    link_ = Link(link_sock, loop)
    host, port = str(args["host"] or ""), int(args["port"])
    try:
        from .web_config import load_web_config

        config = load_web_config(args["web_config"]) if args["web_config"] else None
        sockets = listening_sockets(host, port)
    except OSError as exc:
        await link_.send(link.START_FAILED, {"message": describe_bind_error(host, port, exc)})
        return
    except Exception as exc:  # noqa: BLE001 - e.g. the web config changed since instrument()
        await link_.send(link.START_FAILED, {"message": str(exc)})
        return
    endpoint = Endpoint(limits, link_, Settings.of(config, ThreadPoolExecutor(max_workers=1)),
                        loop)
    # asyncio accepts up to ``backlog`` connections per wake-up and listens with the same
    # number; a small batch keeps a newcomer's first bytes within reach before 256 newer
    # connections could evict it, a long kernel queue keeps a flood from dropping the
    # scraper's SYN (then retried only after 1 s, 3 s, ...)
    servers = [await loop.create_server(endpoint.protocol, sock=s, backlog=ACCEPT_BATCH)
               for s in sockets]
    for s in sockets:
        s.listen(LISTEN_BACKLOG)
    _limit_resources(limits)
    await link_.send(link.READY, {"port": sockets[0].getsockname()[1]})
    tasks = [loop.create_task(endpoint.snapshots.run()),
             loop.create_task(endpoint.sweep_forever(int(args["parent"])))]
    if args["web_config"]:
        tasks.append(loop.create_task(endpoint.watch_config(str(args["web_config"]))))
    reader = loop.create_task(link_.read_forever())
    await link_.closed.wait()
    for server in servers:
        server.close()
    for task in (*tasks, reader):
        task.cancel()


def _quiet_connection_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Failed handshakes and resets are the clients' problem, not log lines."""
    exc = context.get("exception")
    if exc is None or isinstance(exc, (OSError, ConnectionError)):
        return
    loop.default_exception_handler(context)


def main(argv: list[str]) -> int:
    args = json.loads(argv[1])
    link_sock = socket.socket(fileno=int(args["fd"]))
    link_sock.setblocking(False)
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_quiet_connection_errors)
    try:
        loop.run_until_complete(serve(args, link_sock))
    except KeyboardInterrupt:
        pass
    finally:
        with contextlib.suppress(Exception):
            loop.close()
    return 0


if __name__ == "__main__":
    os._exit(main(sys.argv) or 0)  # no interpreter teardown: nothing here needs it
