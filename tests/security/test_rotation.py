"""Certificates and passwords rotate without a restart, as exporter-toolkit's do.

cert-manager rewrites the certificate files in place and workers run for weeks: the web
configuration and the files it names are re-read when they change; a broken new version
keeps the last good one, counted (``component="web_config"``) and logged.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import shutil
import ssl
import time
from pathlib import Path

from cryptography import x509
from security_support import PASSWORD, bcrypt_hash, client_context, registry_with_probe

from livekit_agents_exporter.http_server import MetricsServer
from livekit_agents_exporter.web_config import load_web_config


def _served_serial(port: int, ctx: ssl.SSLContext) -> int:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def _status(port: int, auth: tuple[str, str] | None, ctx: ssl.SSLContext | None = None) -> int:
    conn = (http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx) if ctx
            else http.client.HTTPConnection("127.0.0.1", port, timeout=10))
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    try:
        conn.request("GET", "/healthz", headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def _wait(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (OSError, ssl.SSLError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class _Errors:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, component: str, detail: str = "") -> None:
        self.seen.append((component, detail))


def _serve(config: Path, errors: _Errors) -> MetricsServer:
    server = MetricsServer(registry_with_probe(), "127.0.0.1", 0,
                           web_config=load_web_config(config), on_error=errors)
    server.start()
    return server


def test_a_certificate_rewritten_in_place_is_served_without_restart(pki, tmp_path):
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server.cert, cert)
    shutil.copy(pki.server.key, key)
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    errors = _Errors()
    server = _serve(config, errors)
    try:
        ctx = client_context(pki)
        first = _served_serial(server.port, ctx)
        assert first == _serial(pki.server.cert)
        renewed = pki._issue(pki.ca, "renewed", server=True,
                             sans=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        key.write_bytes(renewed.key.read_bytes())  # as cert-manager does: both files change
        cert.write_bytes(renewed.cert.read_bytes())
        _wait(lambda: _served_serial(server.port, ctx) == _serial(renewed.cert),
              what="the renewed certificate to be served")
        pid = server.endpoint_pid
        assert server.restarts == 0 and server.endpoint_pid == pid
        assert not [e for e in errors.seen if e[0] == "web_config"], errors.seen
    finally:
        server.stop()


def test_a_broken_new_version_keeps_the_last_good_one_and_is_counted(tmp_path):
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  prometheus: '{bcrypt_hash(PASSWORD)}'\n")
    errors = _Errors()
    server = _serve(config, errors)
    try:
        assert _status(server.port, ("prometheus", PASSWORD)) == 200
        config.write_text("basic_auth_users:\n  prometheus: hunter2-plaintext\n")
        _wait(lambda: any(c == "web_config" for c, _ in errors.seen),
              what="the broken version to be reported")
        component, detail = next(e for e in errors.seen if e[0] == "web_config")
        assert "basic_auth_users.prometheus: must be a bcrypt hash" in detail, detail
        assert "hunter2" not in detail
        assert _status(server.port, ("prometheus", PASSWORD)) == 200  # the last good one
        assert _status(server.port, None) == 401
        # then a good new password: the old one stops working, the new one works
        config.write_text(f"basic_auth_users:\n  prometheus: '{bcrypt_hash('rotated')}'\n")
        _wait(lambda: _status(server.port, ("prometheus", "rotated")) == 200,
              what="the rotated password to be accepted")
        assert _status(server.port, ("prometheus", PASSWORD)) == 401
        assert server.restarts == 0
    finally:
        server.stop()


def test_tls_can_be_switched_on_by_the_config_alone(pki, tmp_path):
    config = tmp_path / "web.yml"
    config.write_text("http_server_config:\n  headers: {X-Content-Type-Options: nosniff}\n")
    errors = _Errors()
    server = _serve(config, errors)
    try:
        assert _status(server.port, None) == 200
        config.write_text(f"tls_server_config:\n  cert_file: {pki.server.cert}\n"
                          f"  key_file: {pki.server.key}\n")
        _wait(lambda: _status(server.port, None, client_context(pki)) == 200,
              what="TLS to be served")
    finally:
        server.stop()
