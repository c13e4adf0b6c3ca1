"""A real Prometheus scraping an exposition source, for the live-query tests.

``exposition_source()`` is the one function that decides what Prometheus scrapes. It
yields scrape groups (``ScrapeGroup``: a job name, target labels and ``host:port``
addresses) of the real instrumented fleet in ``dash_real_fleet``: real livekit-agents
workers wrapped by ``instrument()`` and driven by the dispatch simulator.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from livekit_agents_exporter import metrics as m

SCRAPE_INTERVAL_S = 1
# What Grafana would put in $__rate_interval for a 1 s scrape interval and a 1 s step:
# max($__interval + scrape interval, 4 * scrape interval).
RATE_INTERVAL = f"{4 * SCRAPE_INTERVAL_S}s"
JOB = "livekit-agents"


@dataclass(frozen=True)
class ScrapeGroup:
    job: str
    targets: list[str]
    labels: dict[str, str] = field(default_factory=dict)


@contextmanager
def exposition_source() -> Iterator[list[ScrapeGroup]]:
    """What Prometheus scrapes: a real instrumented fleet driven by the simulator."""
    from dash_real_fleet import real_fleet

    with real_fleet() as fleet:
        yield [ScrapeGroup(JOB, addresses, labels) for labels, addresses in fleet.targets()]


# --- rules ----------------------------------------------------------------------------


def rule_document() -> tuple[dict[str, Any], str]:
    """The alert pack's rules (every for: a hundred times shorter) if it is in the tree,
    else a small stand-in with LiveKitAgents* alerts so that the ALERTS panels have data."""
    try:
        from livekit_agents_exporter.rules import load_config, render_rules  # type: ignore
    except ImportError:
        return _stand_in_rules(), "stand-in"
    return render_rules(load_config().scaled(0.01)), "alert pack"


def _stand_in_rules() -> dict[str, Any]:
    s = m.series
    by = "sum by (cluster, agent_name)"
    available = (f"({s('worker_registered')} == bool 1) * ({s('worker_full')} == bool 0) "
                 f"* ({s('worker_draining')} == bool 0)")
    return {"groups": [{"name": "livekit-agents-stand-in.alerts", "rules": [
        {"alert": "LiveKitAgentsNoCapacity",
         "expr": f"{by} ({available}) == 0 and {by} ({s('worker_registered')}) > 0",
         "for": "2s", "labels": {"severity": "critical"},
         "annotations": {"summary": "No worker of the agent can take a job."}},
        {"alert": "LiveKitAgentsJobRequestsRejected",
         "expr": f"{by} (rate({s('job_requests_rejected')}[1m])) > 0",
         "for": "1h", "labels": {"severity": "warning"},
         "annotations": {"summary": "Job offers are being refused (stays pending here)."}},
    ]}]}


# --- Prometheus -----------------------------------------------------------------------


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        message = ("prometheus not found: the live dashboard queries need a real Prometheus "
                   "(install the Debian package 'prometheus')")
        if os.environ.get("LKX_REQUIRE_BINARIES"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """``prometheus`` on loopback with its TSDB in a temporary directory."""

    def __init__(self, binary: str, groups: list[ScrapeGroup], rules: dict[str, Any]) -> None:
        self.binary, self.groups, self.rules = binary, groups, rules
        self._tmp = tempfile.TemporaryDirectory(prefix="dashboard-prometheus-")
        self.workdir = Path(self._tmp.name)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = self.workdir / "prometheus.log"

    def start(self, attempts: int = 3, timeout: float = 30.0) -> Prometheus:
        rules_path = self.workdir / "rules.yml"
        rules_path.write_text(yaml.safe_dump(self.rules, sort_keys=False))
        config = {
            "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s",
                       "scrape_timeout": f"{SCRAPE_INTERVAL_S}s",
                       "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
            "rule_files": [str(rules_path)],
            "scrape_configs": [{"job_name": job, "static_configs": static}
                               for job, static in self._by_job().items()],
        }
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        for attempt in range(attempts):  # the free port can be taken before we bind it
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            argv = [self.binary, f"--config.file={config_path}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
            with self.log.open("wb") as log:
                self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                             cwd=self.workdir)
            if self._wait_ready(timeout):
                return self
            self.stop(cleanup=False)
            if attempt == attempts - 1 or "address already in use" not in self.log.read_text():
                break
        log = self.log.read_text()[-3000:]
        self._tmp.cleanup()
        raise RuntimeError(f"prometheus did not start:\n{log}")

    def _by_job(self) -> dict[str, list[dict[str, Any]]]:
        """One scrape config per job, one static config per group of target labels."""
        jobs: dict[str, list[dict[str, Any]]] = {}
        for g in self.groups:
            jobs.setdefault(g.job, []).append({"targets": g.targets, "labels": g.labels})
        return jobs

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1):  # noqa: S310
                    return True
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        return False

    def stop(self, cleanup: bool = True) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if cleanup:
            self._tmp.cleanup()

    # --- HTTP API -----------------------------------------------------------------

    def api(self, path: str, params: list[tuple[str, str]] | dict[str, Any]) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise QueryError(f"{path}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        return self.api("query", {"query": expr, "time": f"{at:.3f}"})["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Any]:
        return self.api("query_range", {"query": expr, "start": f"{start:.3f}",
                                        "end": f"{end:.3f}", "step": step})["result"]

    def label_values(self, label: str, match: str, start: float, end: float) -> list[str]:
        return self.api(f"label/{label}/values", [("match[]", match), ("start", f"{start:.3f}"),
                                                  ("end", f"{end:.3f}")])

    def targets_up(self) -> int:
        active = self.api("targets", {"state": "active"})["activeTargets"]
        return sum(1 for t in active if t.get("health") == "up")


class QueryError(RuntimeError):
    pass


@dataclass
class Live:
    """A running Prometheus that scrapes the exposition source and evaluates the rules."""

    prom: Prometheus
    groups: list[ScrapeGroup]
    rules_source: str  # "alert pack" or "stand-in"
    started: float  # wall clock when every target was up


# --- Grafana's side: variable interpolation --------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def interpolate(expr: str, values: dict[str, str]) -> str:
    """Replace ``$name``/``${name}`` everywhere, quoted strings included, as Grafana does."""
    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]
    return _VARIABLE.sub(sub, expr)


def all_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """Every variable at its default: All (its allValue) for the label filters."""
    values: dict[str, str] = {}
    for t in dashboard["templating"]["list"]:
        if t.get("includeAll"):
            values[t["name"]] = t["allValue"]
        elif t["type"] in ("textbox", "constant"):
            values[t["name"]] = t["query"]
    return values


def finite(result: list[dict[str, Any]]) -> bool:
    """At least one sample that is a number (histogram_quantile of nothing is NaN)."""
    for series in result:
        samples = series.get("values") or [series.get("value")]
        for sample in samples:
            if sample and math.isfinite(float(sample[1])):
                return True
    return False
