"""Helpers for the security suite: credentials, registries and TLS client contexts.

(Kept out of ``conftest.py`` so that test modules can import them by a unique name.)
"""

from __future__ import annotations

import functools
import ssl

from pki import Pki
from prometheus_client import CollectorRegistry, Counter

PASSWORD = "correct horse battery staple"


@functools.cache
def bcrypt_hash(password: str, cost: int = 4) -> str:
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


def registry_with_probe() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("probe", "A series every scrape must show.", registry=registry).inc()
    return registry


def client_context(pki: Pki, cert: object | None = None, *,
                   max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client that trusts the test CA and optionally presents ``cert`` (an Issued)."""
    ctx = ssl.create_default_context(cafile=str(pki.ca[0].cert))
    if cert is not None:
        ctx.load_cert_chain(str(cert.cert), str(cert.key))
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx
