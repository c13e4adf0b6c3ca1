"""The live endpoint with real TLS clients: who gets metrics and who is refused."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
import time

import pytest
from security_support import PASSWORD, bcrypt_hash, client_context

from livekit_agents_exporter.endpoint_process import KNOWN_PATHS


def request(server, path="/metrics", *, ctx=None, auth=None, method="GET", headers=None,
            timeout=10):
    conn_cls = http.client.HTTPSConnection if ctx else http.client.HTTPConnection
    kwargs = {"context": ctx} if ctx else {}
    conn = conn_cls("127.0.0.1", server.port, timeout=timeout, **kwargs)
    hdrs = dict(headers or {})
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        hdrs["Authorization"] = "Basic " + token
    try:
        conn.request(method, path, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def tls_config(pki, auth_type="NoClientCert", users=True, **extra):
    text = (f"tls_server_config:\n  cert_file: {pki.server.cert}\n  key_file: {pki.server.key}\n"
            f"  client_auth_type: {auth_type}\n")
    if auth_type != "NoClientCert":
        text += f"  client_ca_file: {pki.ca[0].cert}\n"
    for key, value in extra.items():
        text += f"  {key}: {value}\n"
    if users:
        text += f"basic_auth_users:\n  prometheus: '{bcrypt_hash(PASSWORD)}'\n"
    return text


# -- TLS + basic auth ----------------------------------------------------------------------
def test_right_credentials_get_metrics_wrong_or_missing_get_401(pki, serve):
    server = serve(tls_config(pki))
    ctx = client_context(pki)
    status, _, body = request(server, ctx=ctx, auth=("prometheus", PASSWORD))
    assert status == 200 and "probe_total 1.0" in body
    for auth in (None, ("prometheus", "wrong"), ("nobody", PASSWORD), ("prometheus", "")):
        status, headers, body = request(server, ctx=ctx, auth=auth)
        assert status == 401, auth
        assert headers["WWW-Authenticate"].startswith("Basic")
        assert "probe_total" not in body
    no_colon = "Basic " + base64.b64encode(b"nocolon").decode()
    for bad in ("Bearer abc", "Basic !!!notbase64", no_colon):
        assert request(server, ctx=ctx, headers={"Authorization": bad})[0] == 401
    # every path is behind auth, the landing page and health too
    for path in KNOWN_PATHS:
        assert request(server, path, ctx=ctx)[0] == 401


def test_plaintext_to_the_tls_port_gets_no_http_answer(pki, serve):
    server = serve(tls_config(pki, users=False))
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        request(server, timeout=5)
    assert server.url.startswith("https://")
    assert request(server, ctx=client_context(pki))[0] == 200  # still serving TLS clients


def test_tls_version_floor_is_enforced(pki, serve):
    server = serve(tls_config(pki, users=False, min_version="TLS13"))
    with pytest.raises(ssl.SSLError):
        request(server, ctx=client_context(pki, max_version=ssl.TLSVersion.TLSv1_2))
    assert request(server, ctx=client_context(pki))[0] == 200


# -- client certificates ---------------------------------------------------------------------
def test_required_client_certificate(pki, serve):
    server = serve(tls_config(pki, "RequireAndVerifyClientCert", users=False))
    good = pki.client("scraper")
    assert request(server, ctx=client_context(pki, good))[0] == 200
    for ctx in (client_context(pki), client_context(pki, pki.client("intruder", rogue=True))):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            request(server, ctx=ctx)


def test_optional_client_certificate_is_verified_when_given(pki, serve):
    server = serve(tls_config(pki, "VerifyClientCertIfGiven", users=False))
    assert request(server, ctx=client_context(pki))[0] == 200
    assert request(server, ctx=client_context(pki, pki.client("scraper2")))[0] == 200
    with pytest.raises((ssl.SSLError, ConnectionError)):
        request(server, ctx=client_context(pki, pki.client("intruder2", rogue=True)))


def test_client_allowed_sans(pki, serve):
    server = serve(tls_config(pki, "RequireAndVerifyClientCert", users=False,
                              client_allowed_sans="[prometheus.monitoring.svc]"))
    allowed = pki.client("prom", san="prometheus.monitoring.svc")
    assert request(server, ctx=client_context(pki, allowed))[0] == 200
    other = pki.client("other", san="grafana.monitoring.svc")
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        request(server, ctx=client_context(pki, other))


def test_mtls_and_basic_auth_together(pki, serve):
    server = serve(tls_config(pki, "RequireAndVerifyClientCert"))
    ctx = client_context(pki, pki.client("both"))
    assert request(server, ctx=ctx)[0] == 401
    assert request(server, ctx=ctx, auth=("prometheus", PASSWORD))[0] == 200


# -- bcrypt cost: cached, fair, rate limited (bcrypt counts: test_auth_gate.py) -----------------
def test_successful_checks_are_cached(serve):
    server = serve(f"basic_auth_users:\n  prometheus: '{bcrypt_hash(PASSWORD, 10)}'\n")
    first = time.perf_counter()
    assert request(server, auth=("prometheus", PASSWORD))[0] == 200
    first = time.perf_counter() - first
    times = []
    for _ in range(20):  # /healthz: /metrics is spaced to 10 renders a second after a burst
        start = time.perf_counter()
        assert request(server, "/healthz", auth=("prometheus", PASSWORD))[0] == 200
        times.append(time.perf_counter() - start)
    times.sort()
    print(f"\nbasic auth cost 10: first scrape {first * 1000:.1f} ms, "
          f"cached p50 {times[10] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")
    assert times[10] < first / 2, (times[10], first)
    # a wrong password is never served from the cache
    assert request(server, auth=("prometheus", PASSWORD + "x"))[0] == 401


def test_password_guessing_is_rate_limited_and_scraper_keeps_access(serve):
    server = serve(f"basic_auth_users:\n  prometheus: '{bcrypt_hash(PASSWORD)}'\n")
    assert request(server, auth=("prometheus", PASSWORD))[0] == 200  # cached from now on
    results: list[int] = []

    def guess(i: int) -> None:
        results.append(request(server, auth=("prometheus", f"guess{i}"))[0])

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) == {401, 429}, results  # one address: a short queue, then busy
    assert results.count(429) >= 20, results
    assert request(server, auth=("prometheus", PASSWORD))[0] == 200


# -- methods, paths, sizes, headers --------------------------------------------------------------
@pytest.mark.parametrize("path", KNOWN_PATHS)
def test_get_and_head_on_known_paths(serve, path):
    server = serve()
    status, headers, body = request(server, path)
    assert status == 200 and body
    status, headers, body = request(server, path, method="HEAD")
    assert status == 200 and body == ""


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
                                    "PROPFIND"])
def test_other_methods_get_405_with_allow(serve, method):
    server = serve()
    status, headers, _ = request(server, "/metrics", method=method)
    assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_unregistered_method_names_are_bad_requests(serve):
    # the HTTP parser refuses method names outside the IANA registry before routing
    assert request(serve(), "/metrics", method="BREW")[0] == 400


def test_connect_is_refused(serve):
    # CONNECT names a host:port, not a path: no resource of ours, so 404
    assert request(serve(), "127.0.0.1:22", method="CONNECT")[0] == 404


@pytest.mark.parametrize("path", ["/metrics/", "/admin", "/../etc/passwd", "/metrics.json",
                                  "/debug/pprof", "//metrics"])
def test_unknown_paths_get_404(serve, path):
    assert request(serve(), path)[0] == 404


def raw_exchange(server, data: bytes, timeout=5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


@pytest.mark.parametrize("what, data", [
    ("request line over 4 KiB", b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("header line over 8 KiB", b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"),
    ("more than 64 headers", b"GET /metrics HTTP/1.1\r\n"
     + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n"),
])
def test_oversized_requests_are_refused(serve, what, data):
    server = serve()
    answer = raw_exchange(server, data)
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 431), (what, answer[:100])
    assert request(server)[0] == 200


def test_configured_headers_are_on_every_response(serve):
    server = serve("http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
                   "    X-Frame-Options: deny\n"
                   f"basic_auth_users:\n  prometheus: '{bcrypt_hash(PASSWORD)}'\n")
    for path, auth, expected in (("/metrics", ("prometheus", PASSWORD), 200),
                                 ("/metrics", None, 401), ("/nope", ("prometheus", PASSWORD), 404)):
        status, headers, _ = request(server, path, auth=auth)
        assert status == expected
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "deny"


def test_configured_rate_limit(serve):
    server = serve("rate_limit:\n  interval: 1s\n  burst: 3\n")
    statuses = [request(server)[0] for _ in range(6)]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]


def test_concurrent_auth_checks_do_not_block_cached_scrapes(serve):
    """bcrypt runs on its own thread: a cached scraper is served while checks queue up."""
    server = serve(f"basic_auth_users:\n  prometheus: '{bcrypt_hash(PASSWORD, 12)}'\n")
    assert request(server, auth=("prometheus", PASSWORD), timeout=30)[0] == 200
    slow = [threading.Thread(target=request, args=(server,),
                             kwargs={"auth": ("prometheus", f"g{i}"), "timeout": 30})
            for i in range(3)]
    for t in slow:
        t.start()
    time.sleep(0.05)
    start = time.perf_counter()
    assert request(server, auth=("prometheus", PASSWORD))[0] == 200
    assert time.perf_counter() - start < 0.2
    for t in slow:
        t.join()


# -- through instrument() -------------------------------------------------------------------------
def _options():
    from livekit.agents import worker as sdk_worker

    from livekit_agents_exporter.synthetic import synthetic_entrypoint

    return sdk_worker.WorkerOptions(entrypoint_fnc=synthetic_entrypoint, ws_url="ws://127.0.0.1:1",
                                    api_key="k", api_secret="s")


def test_instrument_serves_tls_and_auth_from_the_web_config(pki, tmp_path):
    from livekit_agents_exporter import instrument

    path = tmp_path / "web.yml"
    path.write_text(tls_config(pki))
    exporter = instrument(_options(), host="127.0.0.1", port=0, web_config=path)
    try:
        assert exporter.url.startswith("https://127.0.0.1:")
        server = exporter.server
        ctx = client_context(pki)
        assert request(server, ctx=ctx)[0] == 401
        status, _, body = request(server, ctx=ctx, auth=("prometheus", PASSWORD))
        assert status == 200 and "livekit_agents_worker_load_ratio" in body
    finally:
        exporter.close()


def test_instrument_refuses_a_bad_web_config_before_serving(tmp_path):
    from prometheus_client import CollectorRegistry

    from livekit_agents_exporter import ConfigError, InstrumentationError, instrument

    path = tmp_path / "web.yml"
    path.write_text("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n")
    with pytest.raises(ConfigError, match=r"web.yml: tls_server_config.cert_file: cannot read"):
        instrument(_options(), host="127.0.0.1", port=0, web_config=path)
    with pytest.raises(InstrumentationError, match="none is served"):
        instrument(_options(), registry=CollectorRegistry(), web_config=path)


# -- what client_python users expect: gzip, name[] and dual-stack -------------------------------
def test_gzip_when_asked_and_only_then(serve):
    import gzip

    server = serve()
    status, headers, _ = request(server)
    assert status == 200 and "Content-Encoding" not in headers
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip, deflate"})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    assert resp.getheader("Content-Encoding") == "gzip"
    assert b"probe_total 1.0" in gzip.decompress(raw)
    status, headers, body = request(server, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in headers and "probe_total 1.0" in body


def test_name_filter_serves_only_the_named_series(serve):
    from prometheus_client import CollectorRegistry, Counter, Gauge

    registry = CollectorRegistry()
    Counter("probe", "A counter.", registry=registry).inc()
    Gauge("other", "A gauge.", registry=registry).set(2)
    server = serve(registry=registry)
    _, _, body = request(server, "/metrics?name[]=other")
    assert "other 2.0" in body and "probe_total" not in body
    _, _, body = request(server, "/metrics?name[]=other&name[]=probe_total")
    assert "other 2.0" in body and "probe_total 1.0" in body
    _, _, body = request(server, "/metrics")
    assert "other 2.0" in body and "probe_total 1.0" in body


def test_double_colon_listens_on_ipv4_and_ipv6(serve):
    from prometheus_client import CollectorRegistry

    from livekit_agents_exporter.http_server import MetricsServer

    if not socket.has_ipv6:
        pytest.fail("this test needs an IPv6 loopback")
    server = MetricsServer(CollectorRegistry(), "::", 0)
    server.start()
    try:
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect((host, server.port))
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert sock.recv(64).startswith(b"HTTP/1.1 200"), host
    finally:
        server.stop()


def test_no_software_version_in_any_answer(serve):
    from livekit_agents_exporter.version import __version__

    server = serve(f"basic_auth_users:\n  prometheus: '{bcrypt_hash(PASSWORD)}'\n")
    for path, auth in (("/metrics", None), ("/metrics", ("prometheus", PASSWORD)), ("/x", None)):
        status, headers, body = request(server, path, auth=auth)
        assert headers.get("Server") == "livekit-agents-exporter", headers
        assert "aiohttp" not in str(headers) and "Python" not in str(headers)
    bad = send(server.port, b"GET /" + b"\xff" * 5000 + b" HTTP/1.1\r\n\r\n")
    assert b"\xff" not in bad and __version__ not in bad.decode("latin-1")


def send(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def test_error_answers_never_echo_the_clients_bytes(serve):
    server = serve()
    for data in (b"GET /secret-path-marker HTTP/1.1\r\n" + b"X-A: marker\r\n" * 200 + b"\r\n",
                 b"MARKER\x00 / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: marker\x01\r\n\r\n",
                 b"GET / HTTP/9.9marker\r\n\r\n"):
        answer = send(server.port, data)
        assert answer.startswith(b"HTTP/1."), answer[:40]
        assert b"marker" not in answer.lower(), answer


def test_a_request_followed_by_a_half_close_is_answered(serve):
    server = serve()
    answer = send(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and b"probe_total 1.0" in answer
