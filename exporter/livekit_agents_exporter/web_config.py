"""TLS and basic auth for the metrics endpoint, from an exporter-toolkit web configuration file.

Prometheus's own exporters read ``--web.config.file`` (exporter-toolkit's
https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md);
operators already have these files, so the exporter reads the same format::

    tls_server_config:
      cert_file: server.crt            # relative paths are relative to this file
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      min_version: TLS12
    http_server_config:
      headers: {X-Content-Type-Options: nosniff}
    basic_auth_users:
      prometheus: $2y$10$...           # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')

``load_web_config`` validates the whole file, certificates included, and returns a
``WebConfig`` holding a ready ``ssl.SSLContext`` and a ``BasicAuth``; anything wrong
raises one ``ConfigError`` naming the file and the key. Where Python's ``ssl`` module
cannot do what Go's ``crypto/tls`` does, the key is refused with a message saying so,
never silently ignored (see ``UNSUPPORTED``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from base64 import b64decode
from binascii import Error as BinasciiError
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import extras
from .prometheus_syntax import parse_duration

# ssl, the YAML reader (yaml) and bcrypt are imported where a file needs them: a worker
# without a web config never loads them (tests/packaging/test_imports.py)
if TYPE_CHECKING:
    import ssl

    from .config_file import ConfigMap

# exporter-toolkit's names -> the members of ssl.TLSVersion
TLS_VERSIONS = {"TLS10": "TLSv1", "TLS11": "TLSv1_1", "TLS12": "TLSv1_2", "TLS13": "TLSv1_3"}
CLIENT_AUTH_TYPES = ("NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                     "RequireClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
_VERIFYING = ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert")

# Go cipher suite names (crypto/tls CipherSuites()) -> OpenSSL names. TLS 1.3 suites are
# accepted and, as in Go, not configurable.
GO_CIPHERS = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
}

# Response headers an operator may set, and their allowed values (None: any), as in
# exporter-toolkit, so the same file means the same thing everywhere.
EXTRA_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}

# Keys of the format this exporter refuses, with the reason shown to the user.
UNSUPPORTED = {
    "cert": "inline certificates are not supported here; put the certificate in a file and "
            "use cert_file",
    "key": "inline private keys are not supported here; put the key in a file and use key_file",
    "curve_preferences": "not supported: Python's ssl module cannot set a curve preference list; "
                         "remove it to use OpenSSL's defaults",
}
_REQUIRE_ANY = ("Python's ssl module cannot require a client certificate without verifying it; "
                "use RequireAndVerifyClientCert with client_ca_file")

# $2x$ marks hashes of a broken 2011 implementation: the bcrypt package cannot check them
_BCRYPT = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")
MAX_BCRYPT_COST = 14  # about 1 s per check already; 31 would be days
MAX_PEM_BYTES = 1 << 20


@dataclass(frozen=True)
class WebConfig:
    """A validated web configuration file, ready to serve with."""

    file: str
    ssl_context: ssl.SSLContext | None = None
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: frozenset[str] = frozenset()
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    rate_limit: tuple[float, int] | None = None  # (seconds between requests, burst)
    http2: bool = True  # accepted for compatibility; the endpoint speaks HTTP/1.1
    watched_files: tuple[str, ...] = ()  # this file and those it names, re-read on change

    @property
    def tls(self) -> bool:
        return self.ssl_context is not None

    def authenticator(self) -> BasicAuth | None:
        return BasicAuth(self.users) if self.users else None

    def describe(self) -> str:
        parts = []
        if self.ssl_context is not None:
            lo = _version_name(self.ssl_context.minimum_version)
            hi = _version_name(self.ssl_context.maximum_version)
            parts.append(f"TLS {lo}..{hi}, client certificates: {self.client_auth_type}"
                         + (f" (allowed SANs: {len(self.client_allowed_sans)})"
                            if self.client_allowed_sans else ""))
        else:
            parts.append("plain HTTP (no tls_server_config)")
        parts.append(f"basic auth: {len(self.users)} user(s)" if self.users else "no basic auth")
        if self.headers:
            parts.append(f"extra headers: {', '.join(sorted(self.headers))}")
        if self.rate_limit:
            interval, burst = self.rate_limit
            parts.append(f"rate limit: 1 request per {interval:g}s, burst {burst}")
        return "; ".join(parts)


def _version_name(version: ssl.TLSVersion) -> str:
    for name, member in TLS_VERSIONS.items():
        if member == version.name:
            return name
    return str(version.name)


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read and validate a web configuration file; ``ConfigError`` names what is wrong."""
    from .config_file import ConfigMap, read_yaml

    file = os.fspath(path)
    root = ConfigMap(read_yaml(file), file)
    sections = [root.section(name) for name in
                ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")]
    root.finish()  # a misspelt section is reported before anything inside the others
    tls_sec, http, users_sec, rate_sec = sections
    http2 = http.take("http2", bool, True)
    headers = _load_headers(http.section("headers"))
    http.finish()
    users = _load_users(users_sec)
    rate_limit = _load_rate_limit(rate_sec)
    named: list[str] = []
    ctx, auth_type, sans = _load_tls(tls_sec, os.path.dirname(os.path.abspath(file)), named)
    return WebConfig(file=file, ssl_context=ctx, client_auth_type=auth_type,
                     client_allowed_sans=frozenset(sans), users=users, headers=headers,
                     rate_limit=rate_limit, http2=http2, watched_files=(file, *named))


def watched_state(files: tuple[str, ...]) -> tuple[tuple[int, int, int, int] | None, ...]:
    """What changes when any of ``files`` is replaced or rewritten (cert-manager swaps a
    symlink; an editor rewrites in place): device, inode, size and modification time."""
    state: list[tuple[int, int, int, int] | None] = []
    for path in files:
        try:
            info = os.stat(path)
            state.append((info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns))
        except OSError:
            state.append(None)
    return tuple(state)


def _load_tls(sec: ConfigMap, base_dir: str,
              named: list[str]) -> tuple[ssl.SSLContext | None, str, list[str]]:
    import ssl

    from .config_file import one_of

    for key, reason in UNSUPPORTED.items():
        if key in sec:
            raise sec.error(key, reason)
    if not sec.data:
        return None, "NoClientCert", []

    def file_key(name: str) -> str | None:
        value = sec.take(name, str, None)
        if value is None or value == "":
            return None
        return value if os.path.isabs(value) else os.path.join(base_dir, value)

    cert_file, key_file = file_key("cert_file"), file_key("key_file")
    ca_file = file_key("client_ca_file")
    named.extend(f for f in (cert_file, key_file, ca_file) if f)
    ca_text = sec.take("client_ca", str, None)
    auth_type = sec.take("client_auth_type", str, "NoClientCert",
                         check=one_of(*CLIENT_AUTH_TYPES)) or "NoClientCert"
    versions = one_of(*TLS_VERSIONS)
    min_version = ssl.TLSVersion[TLS_VERSIONS[sec.take("min_version", str, "TLS12",
                                                       check=versions)]]
    max_version = ssl.TLSVersion[TLS_VERSIONS[sec.take("max_version", str, "TLS13",
                                                       check=versions)]]
    sans = sec.take_str_list("client_allowed_sans")
    prefer_server = sec.take("prefer_server_cipher_suites", bool, True)
    ciphers = sec.take_str_list("cipher_suites")
    sec.finish()

    if cert_file is None:
        raise sec.error("cert_file", "is required when tls_server_config is set")
    if key_file is None:
        raise sec.error("key_file", "is required when tls_server_config is set")
    if min_version > max_version:
        raise sec.error("min_version", "is above max_version")
    if auth_type in ("RequireAnyClientCert", "RequireClientCert"):
        raise sec.error("client_auth_type", f"{auth_type} is not supported: {_REQUIRE_ANY}")
    has_ca = ca_file is not None or bool(ca_text)
    if ca_file is not None and ca_text:
        raise sec.error("client_ca", "give either client_ca or client_ca_file, not both")
    if has_ca and auth_type == "NoClientCert":
        raise sec.error("client_ca_file", "client CAs are configured but client_auth_type is "
                                          "NoClientCert; set client_auth_type")
    if auth_type in _VERIFYING and not has_ca:
        raise sec.error("client_ca_file", f"is required with client_auth_type {auth_type} "
                                          "(the CA that signs the scrapers' certificates)")
    if sans and auth_type != "RequireAndVerifyClientCert":
        raise sec.error("client_allowed_sans",
                        "requires client_auth_type RequireAndVerifyClientCert")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.minimum_version, ctx.maximum_version = min_version, max_version
    except (ValueError, ssl.SSLError) as exc:
        raise sec.error("min_version", f"not supported by this OpenSSL: {exc}") from None
    if min_version < ssl.TLSVersion.TLSv1_2:
        # OpenSSL's default security level refuses TLS 1.0/1.1 even when allowed here
        _set_ciphers(ctx, sec, "min_version", "DEFAULT:@SECLEVEL=0")
    if prefer_server:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if ciphers:
        unknown = [c for c in ciphers if c not in GO_CIPHERS]
        if unknown:
            raise sec.error("cipher_suites",
                            f"unknown cipher suite {unknown[0]!r} (names as in Go's "
                            "crypto/tls, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)")
        names = [name for c in ciphers if (name := GO_CIPHERS[c])]
        if names:
            _set_ciphers(ctx, sec, "cipher_suites", ":".join(names))
    _load_cert_chain(ctx, sec, cert_file, key_file)
    if auth_type in _VERIFYING:
        _load_client_ca(ctx, sec, ca_file, ca_text)
        ctx.verify_mode = ssl.CERT_REQUIRED if auth_type == "RequireAndVerifyClientCert" \
            else ssl.CERT_OPTIONAL
    # RequestClientCert: Go asks for a certificate and never checks it, so nobody is refused;
    # Python cannot ask without verifying, so it does not ask: the same access decision.
    return ctx, auth_type, sans


def _set_ciphers(ctx: ssl.SSLContext, sec: ConfigMap, key: str, spec: str) -> None:
    import ssl

    try:
        ctx.set_ciphers(spec)
    except ssl.SSLError as exc:
        raise sec.error(key, f"not supported by this OpenSSL: {exc.reason or exc}") from None


def _read(sec: ConfigMap, key: str, path: str) -> bytes:
    from .config_file import read_regular_file

    try:
        return read_regular_file(path, MAX_PEM_BYTES)
    except OSError as exc:
        raise sec.error(key, f"cannot read {path}: {exc.strerror or exc}") from None


def _refuse_password_prompt() -> bytes:
    # OpenSSL would otherwise prompt on the terminal for an encrypted key's passphrase
    raise ValueError("encrypted")


def _load_cert_chain(ctx: ssl.SSLContext, sec: ConfigMap, cert_file: str, key_file: str) -> None:
    import ssl

    cert_pem = _read(sec, "cert_file", cert_file)
    key_pem = _read(sec, "key_file", key_file)
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise sec.error("cert_file", f"{cert_file} holds no PEM certificate")
    if b"PRIVATE KEY-----" not in key_pem:
        raise sec.error("key_file", f"{key_file} holds no PEM private key")
    if b"ENCRYPTED" in key_pem:
        raise sec.error("key_file",
                        f"{key_file} is encrypted; the exporter needs an unencrypted key")
    try:
        ctx.load_cert_chain(cert_file, key_file, password=_refuse_password_prompt)
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc)
        if "KEY_VALUES_MISMATCH" in reason.upper() or "values mismatch" in reason:
            raise sec.error("key_file", f"{key_file} does not match the certificate in "
                                        f"{cert_file}") from None
        raise sec.error("cert_file", f"cannot load {cert_file} with {key_file}: {reason}") from None
    except (OSError, ValueError) as exc:
        raise sec.error("key_file", f"cannot load {key_file}: {exc}") from None


def _load_client_ca(ctx: ssl.SSLContext, sec: ConfigMap, ca_file: str | None,
                    ca_text: str | None) -> None:
    import ssl

    key = "client_ca_file" if ca_file else "client_ca"
    try:
        if ca_file:
            pem = _read(sec, key, ca_file)
            if b"-----BEGIN CERTIFICATE-----" not in pem:
                raise sec.error(key, f"{ca_file} holds no PEM certificate")
            ctx.load_verify_locations(cadata=pem.decode("ascii", "replace"))
        else:
            ctx.load_verify_locations(cadata=ca_text)
    except ssl.SSLError as exc:
        raise sec.error(key, f"not a usable CA certificate: {exc.reason or exc}") from None
    except ValueError as exc:
        raise sec.error(key, f"not a usable CA certificate: {exc}") from None


def _load_headers(sec: ConfigMap) -> dict[str, str]:
    from .config_file import one_of

    headers = {}
    for name in list(sec):
        if name not in EXTRA_HEADERS:
            raise sec.error(name, "this header cannot be set "
                                  f"(allowed: {', '.join(EXTRA_HEADERS)})")
        allowed = EXTRA_HEADERS[name]
        value = sec.take(name, str, "", check=one_of(*allowed) if allowed else None)
        if any(c in value for c in "\r\n\0"):
            raise sec.error(name, "must not contain line breaks")
        if value:
            headers[name] = value
    sec.finish()
    return headers


def _load_users(sec: ConfigMap) -> dict[str, bytes]:
    users = {}
    for name in list(sec):
        if ":" in name:
            raise sec.error(name, "a basic auth user name cannot contain ':'")
        hashed = sec.take(name, str, secret=True)
        match = _BCRYPT.match(hashed)
        if match is None:
            raise sec.error(name, "must be a bcrypt hash such as $2y$10$... ($2a$, $2b$ or $2y$) "
                                  "(htpasswd -nBC 10 \"\" | tr -d ':\\n'), not a plain password")
        if not 4 <= int(match.group(1)) <= MAX_BCRYPT_COST:
            raise sec.error(name, f"bcrypt cost {match.group(1)} is outside 4..{MAX_BCRYPT_COST} "
                                  "(each cost step doubles the time of a check; 10 is usual)")
        users[name] = hashed.encode("ascii")
    sec.finish()
    if users and not extras.installed("basic-auth"):
        raise sec.error(next(iter(users)), "basic auth checks bcrypt hashes, which needs the "
                        f"bcrypt package: {extras.install_command('basic-auth')}")
    return users


def _load_rate_limit(sec: ConfigMap) -> tuple[float, int] | None:
    if not sec.data:
        return None
    raw = sec.take("interval", (str, int), 0)
    interval = raw * 1e-9 if isinstance(raw, int) else parse_duration(raw, go=True)
    if interval is None or interval < 0:
        raise sec.error("interval", f"must be a duration such as 100ms or 1s, got {raw!r}")
    burst = sec.take("burst", int, 0, check=lambda v: None if v >= 0 else "must not be negative")
    sec.finish()
    if interval == 0:
        return None
    if burst == 0:
        raise sec.error("burst",
                        "must be at least 1 when interval is set (0 refuses every request)")
    return interval, burst


class TokenBucket:
    """``allow()`` true at most ``burst`` times at once and once per ``interval`` after."""

    def __init__(self, interval: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._interval, self._burst, self._clock = interval, burst, clock
        self._tokens, self._at = float(burst), clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._at) / self._interval)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


# bcrypt("fakepassword", cost 10): checked for unknown users so that timing does not tell
# which user names exist (exporter-toolkit does the same)
_DECOY_HASH = b"$2b$10$LSpO6MgZNXzLEN452o.FHOlihV6.hygIMfNhHdfaVfeY4cJIgv10W"
MAX_CACHED_CREDENTIALS = 100


class BasicAuth:
    """Checks ``Authorization: Basic`` credentials against bcrypt hashes, with a cache.

    bcrypt is slow on purpose (~50-100 ms at cost 10); a scraper presenting the same
    credentials every 15 s must not pay that each time, so successful checks are
    remembered as keyed MACs (never the password itself) and compared in constant time.
    Only successes are cached: wrong guesses cannot evict the scraper's entry. Checks
    that miss the cache are rate limited (``admit_uncached``) so a flood of wrong
    passwords cannot spend the worker's CPU on bcrypt.
    """

    def __init__(self, users: Mapping[str, bytes], *, uncached_interval: float = 0.5,
                 uncached_burst: int = 10) -> None:
        self._users = dict(users)
        self._key = secrets.token_bytes(32)
        self._verified: OrderedDict[str, list[bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self._budget = TokenBucket(uncached_interval, uncached_burst)

    @staticmethod
    def parse(header: str | None) -> tuple[str, bytes] | None:
        """(user, password) from an Authorization header, or None when absent or malformed."""
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "basic" or not value:
            return None
        try:
            decoded = b64decode(value.strip(), validate=True)
        except (BinasciiError, ValueError):
            return None
        user, sep, password = decoded.partition(b":")
        if not sep:
            return None
        try:
            return user.decode("utf-8"), password
        except UnicodeDecodeError:
            return None

    def mac(self, user: str, password: bytes) -> bytes:
        """A keyed MAC of the credentials: what is remembered instead of the password."""
        hashed = self._users.get(user, _DECOY_HASH)
        msg = b"\0".join((user.encode("utf-8"), hashed, password))
        return hmac.new(self._key, msg, hashlib.sha256).digest()

    def check_cached(self, user: str, password: bytes) -> bool:
        """True when these credentials already passed bcrypt (constant-time comparison)."""
        mac = self.mac(user, password)
        with self._lock:
            known = list(self._verified.get(user, ()))
        ok = False
        for candidate in known:
            ok |= hmac.compare_digest(candidate, mac)
        return ok

    def admit_uncached(self) -> bool:
        """Whether a bcrypt check may run now (token bucket shared by all clients)."""
        return self._budget.allow()

    def verify(self, user: str, password: bytes) -> bool:
        """The slow check: bcrypt (constant-time inside), then remember a success."""
        import bcrypt

        hashed = self._users.get(user)
        try:
            ok = bcrypt.checkpw(password, hashed if hashed is not None else _DECOY_HASH)
        except ValueError:  # e.g. passwords over bcrypt's 72-byte limit
            ok = False
        if not ok or hashed is None:
            return False
        mac = self.mac(user, password)
        with self._lock:
            entries = self._verified.setdefault(user, [])
            if mac not in entries:
                entries.append(mac)
                del entries[:-4]  # a few passwords per user (rotation), no more
            self._verified.move_to_end(user)
            while len(self._verified) > MAX_CACHED_CREDENTIALS:
                self._verified.popitem(last=False)
        return True


MAX_REMEMBERED_FAILURES = 1024


class AuthGate:
    """Schedules the bcrypt checks of the endpoint fairly between client addresses.

    A flood of wrong passwords must not keep the scraper out, even right after a restart
    when the scraper's own credentials are not cached yet: each client address gets a short
    queue of its own (``per_client``; beyond it: busy, 429), and checks are taken from the
    addresses in turn, so the scraper waits for one check per flooding address at most,
    never for the whole flood. Credentials already checked answer from memory (successes
    and failures, as keyed MACs), and the spending of bcrypt stays under the ``BasicAuth``
    budget, one check at a time on ``pool``.
    """

    def __init__(self, auth: BasicAuth, pool: Any, per_client: int = 4,
                 max_wait: float = 5.0) -> None:
        self._auth, self._pool = auth, pool
        self._per_client, self._max_wait = per_client, max_wait
        self._queues: OrderedDict[str, Any] = OrderedDict()
        self._failed: OrderedDict[bytes, None] = OrderedDict()
        self._wake: Any = None
        self._task: Any = None

    async def check(self, user: str, password: bytes, client: str) -> str:
        """"ok", "denied" or "busy" (this client already has ``per_client`` checks waiting)."""
        import asyncio
        from collections import deque

        if self._auth.check_cached(user, password):
            return "ok"
        mac = self._auth.mac(user, password)
        if mac in self._failed:
            return "denied"
        queue = self._queues.get(client)
        if queue is None:
            queue = self._queues[client] = deque()
        if len(queue) >= self._per_client:
            return "busy"
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        queue.append((user, password, fut))
        if self._wake is None:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self._max_wait)
        except asyncio.TimeoutError:
            return "busy"

    async def _run(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queues:
                client, queue = next(iter(self._queues.items()))
                user, password, fut = queue.popleft()
                if queue:
                    self._queues.move_to_end(client)  # the next address goes first
                else:
                    del self._queues[client]
                if fut.done():  # its client gave up
                    continue
                while not self._auth.admit_uncached():
                    await asyncio.sleep(0.05)
                ok = await loop.run_in_executor(self._pool, self._auth.verify, user, password)
                if not ok:
                    self._failed[self._auth.mac(user, password)] = None
                    while len(self._failed) > MAX_REMEMBERED_FAILURES:
                        self._failed.popitem(last=False)
                if not fut.done():
                    fut.set_result("ok" if ok else "denied")
