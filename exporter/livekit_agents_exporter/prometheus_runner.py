"""Starts a throwaway Prometheus (and Alertmanager) on loopback.

The demo, the end-to-end tests, the dashboard tests and the benchmarks all need a
real Prometheus that scrapes a fleet and evaluates the bundled rules; this is the one
place that knows how to start it, wait for it, query it and stop it cleanly.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """First of ``count`` consecutive free ports, below the kernel's ephemeral range."""
    import random

    for _ in range(200):
        base = random.randrange(20000, 32000 - count)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind((host, port))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no block of {count} free ports found")


def find_binary(name: str, explicit: str | None = None) -> str | None:
    if explicit:
        path = Path(explicit)
        return str(path) if path.is_file() else shutil.which(explicit)
    return shutil.which(name)


class PrometheusAPIError(RuntimeError):
    """The HTTP API answered with an error (bad query, unknown endpoint, ...)."""


def _get_json(url: str, timeout: float = 10.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:  # Prometheus explains 4xx/5xx in the body
        return json.loads(exc.read() or b"{}")


@dataclass
class ScrapeTarget:
    job: str
    targets: list[str]
    labels: dict[str, str] = field(default_factory=dict)


def _by_job(targets: list[ScrapeTarget]) -> dict[str, list[dict[str, Any]]]:
    """One scrape config per job (Prometheus refuses duplicates), a static config per group."""
    jobs: dict[str, list[dict[str, Any]]] = {}
    for t in targets:
        jobs.setdefault(t.job, []).append({"targets": t.targets, "labels": t.labels})
    return jobs


class _Process:
    """A child process with a log file and a readiness URL."""

    def __init__(self, name: str, argv: list[str], workdir: Path, ready_url: str) -> None:
        self.name, self.argv, self.workdir, self.ready_url = name, argv, workdir, ready_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{name}.log"

    def start(self, timeout: float = 30.0) -> None:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1):  # noqa: S310 - loopback only
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout}s; log: {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


class _Service:
    """A binary started in its own (possibly temporary) work directory."""

    _process: _Process
    _tmp: tempfile.TemporaryDirectory[str] | None

    def _workdir(self, workdir: Path | None, prefix: str) -> Path:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix=prefix)
        path = Path(workdir) if workdir else Path(self._tmp.name if self._tmp else "")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start(self: _S) -> _S:
        self._process.start()
        return self

    def stop(self) -> None:
        self._process.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_S = TypeVar("_S", bound=_Service)


class Prometheus(_Service):
    """A Prometheus server scraping ``targets`` and evaluating ``rule_files``."""

    def __init__(self, targets: list[ScrapeTarget], rule_files: list[Path] | None = None, *,
                 binary: str = "prometheus", scrape_interval: str = "1s",
                 evaluation_interval: str = "1s", alertmanager_url: str | None = None,
                 workdir: Path | None = None, port: int | None = None,
                 extra_args: list[str] | None = None,
                 scrape_configs: list[dict[str, Any]] | None = None) -> None:
        """``scrape_configs``: more scrape configs, as written in prometheus.yml."""
        self.workdir = self._workdir(workdir, "lkx-prometheus-")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval,
                       "evaluation_interval": evaluation_interval},
            "rule_files": [str(p) for p in rule_files or []],
            "scrape_configs": [{"job_name": job, "static_configs": static}
                               for job, static in _by_job(targets).items()]
            + list(scrape_configs or []),
        }
        if alertmanager_url:
            host = urllib.parse.urlparse(alertmanager_url).netloc
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
        self.config_path = self.workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        argv = [binary, f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle", "--log.level=warn",
                "--rules.alert.resend-delay=1s", *(extra_args or [])]
        self._process = _Process("prometheus", argv, self.workdir, self.url + "/-/ready")

    # -- HTTP API ------------------------------------------------------------------
    def api(self, path: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None) -> Any:
        body = _get_json(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params or {})}")
        if body.get("status") != "success":
            raise PrometheusAPIError(f"{path}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        result: list[dict[str, Any]] = self.api("query", params)["result"]
        return result

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Any]:
        result: list[Any] = self.api("query_range", {"query": promql, "start": f"{start:.3f}",
                                                     "end": f"{end:.3f}", "step": step})["result"]
        return result

    def label_values(self, label: str, match: str, start: float, end: float) -> list[str]:
        values: list[str] = self.api(f"label/{label}/values", [
            ("match[]", match), ("start", f"{start:.3f}"), ("end", f"{end:.3f}")])
        return values

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    def rules(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.api("rules")["groups"]
        return groups

    def targets_up(self) -> int:
        active = self.api("targets", {"state": "active"})["activeTargets"]
        return sum(1 for t in active if t.get("health") == "up")


class Mtail(_Service):
    """An mtail running ``program`` over ``logs`` (paths, globs or a FIFO), on loopback."""

    def __init__(self, program: Path, logs: list[str], *, binary: str = "mtail",
                 poll_interval: str = "100ms", workdir: Path | None = None,
                 port: int | None = None) -> None:
        self.workdir = self._workdir(workdir, "lkx-mtail-")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [binary, "--progs", str(program), "--address", "127.0.0.1",
                "--port", str(self.port), "--emit_prog_label=false", "--logtostderr",
                f"--poll_interval={poll_interval}", f"--poll_log_interval={poll_interval}"]
        for log in logs:
            argv += ["--logs", log]
        self._process = _Process("mtail", argv, self.workdir, self.url + "/metrics")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def tailing(self, path: str | Path) -> bool:
        """Whether mtail has opened ``path`` (its log says so; its metrics only after a line)."""
        log = self._process.log_path
        return log.exists() and f"Tailing {path}" in log.read_text(errors="replace")


class Alertmanager(_Service):
    """An Alertmanager that sends every alert to one webhook, with short timers, or runs
    the given ``config`` (an Alertmanager configuration as a dict)."""

    def __init__(self, webhook_url: str = "", *, binary: str = "prometheus-alertmanager",
                 group_wait: str = "1s", group_interval: str = "1s",
                 repeat_interval: str = "1h", workdir: Path | None = None,
                 config: dict[str, Any] | None = None) -> None:
        self.workdir = self._workdir(workdir, "lkx-alertmanager-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = config or {
            "route": {"receiver": "webhook", "group_by": ["alertname", "agent_name"],
                      "group_wait": group_wait, "group_interval": group_interval,
                      "repeat_interval": repeat_interval},
            "receivers": [{"name": "webhook", "webhook_configs": [
                {"url": webhook_url, "send_resolved": True}]}],
        }
        self.config_path = self.workdir / "alertmanager.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        argv = [binary, f"--config.file={self.config_path}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=", "--log.level=warn"]
        self._process = _Process("alertmanager", argv, self.workdir, self.url + "/-/ready")
