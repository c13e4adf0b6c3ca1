"""Fixtures for the security suite: a throwaway PKI, live metrics endpoints, the simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pki import Pki
from prometheus_client import CollectorRegistry
from security_support import registry_with_probe

from livekit_agents_exporter.http_server import MetricsServer
from livekit_agents_exporter.web_config import load_web_config
from worker_harness import sim  # noqa: F401 - the fixture


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


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
                               web_config=config, **kwargs)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
