"""Fixtures for the security suite: a throwaway PKI and live metrics endpoints."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from livekit_agents_exporter.http_server import MetricsServer
from livekit_agents_exporter.web_config import load_web_config
from pki import Pki

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@functools.lru_cache(maxsize=None)
def bcrypt_hash(password: str, cost: int = 4) -> str:
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


def registry_with_probe() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("probe", "A series every scrape must show.", registry=registry).inc()
    return registry


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., MetricsServer]]:
    """Start a MetricsServer with a web config given as YAML text (None: no config)."""
    started: list[MetricsServer] = []

    def start(config_text: str | None = None, *, registry: CollectorRegistry | None = None,
              **kwargs: object) -> MetricsServer:
        config = None
        if config_text is not None:
            path = tmp_path / f"web-{len(started)}.yml"
            path.write_text(config_text)
            config = load_web_config(path)
        server = MetricsServer(registry or registry_with_probe(), "127.0.0.1", 0,
                               web_config=config, **kwargs)  # type: ignore[arg-type]
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def client_context(pki: Pki, cert: object | None = None, *,
                   max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client that trusts the test CA and optionally presents ``cert`` (an Issued)."""
    ctx = ssl.create_default_context(cafile=str(pki.ca[0].cert))
    if cert is not None:
        ctx.load_cert_chain(str(cert.cert), str(cert.key))  # type: ignore[attr-defined]
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx
