"""Hostile clients against a real instrumented worker: the worker must not notice.

Each case runs one attack from ``attacker.py`` (its own process, loopback only, bounded in
connections and time) against the ``/metrics`` endpoint of a real livekit-agents worker
instrumented as the README shows, while

- a well-behaved scraper (in the attacker's process, from another source address) scrapes
  every 0.25 s: its success rate and its longest lockout are asserted;
- the test offers the worker a job every 0.2 s through the simulator (never assigned, so
  that no job process or thread is counted against the bounds) and times each
  offer-to-answer;
- the worker process's resident memory, open file descriptors and threads are sampled.

Set ``ATTACK_REPORT=path.json`` to collect the figures (docs/SECURITY_AND_RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from security_support import PASSWORD, bcrypt_hash

import worker_harness as harness

ATTACKER = Path(__file__).with_name("attacker.py")
SECONDS = 8.0

# bounds on the worker, whatever the attack (its jobs, one every 0.2 s on the thread
# executor, account for a few threads and descriptors)
MAX_RSS_GROWTH = 40 << 20
MAX_FD_GROWTH = 24
MAX_THREAD_GROWTH = 8
MIN_SCRAPE_SUCCESS = 0.9
MAX_LOCKOUT_S = 3.0
MAX_OFFER_P99_S = 0.25


@dataclass
class Attack:
    name: str
    mode: str
    conns: int
    tls: bool = False
    auth: bool = False


ATTACKS = [
    Attack("oversized headers in a loop", "oversized_headers", 50),
    Attack("oversized headers, TLS and basic auth", "oversized_headers", 50, tls=True, auth=True),
    Attack("3,000 idle TLS handshakes", "idle", 3000, tls=True),
    Attack("300 keep-alive clients, a request every 8 s", "keepalive", 300),
    Attack("1,000 slowloris clients", "slowloris", 1000),
    Attack("2,000 reconnecting idle clients", "idle", 2000),
    Attack("wrong-password flood right after start", "wrong_passwords", 64, auth=True),
]


@dataclass
class Figures:
    attack: str
    rss_growth_mb: float = 0.0
    fd_growth: int = 0
    thread_growth: int = 0
    endpoint_peak_rss_mb: float | None = None
    endpoint_peak_fds: int | None = None
    scrape_success: float = 0.0
    scrape_attempts: int = 0
    longest_lockout_s: float = 0.0
    offers: int = 0
    offer_p50_ms: float = 0.0
    offer_p99_ms: float = 0.0
    offers_unanswered: int = 0
    attacker: dict[str, Any] = field(default_factory=dict)


def web_config(tmp_path: Path, pki: Any, attack: Attack) -> Path | None:
    if not (attack.tls or attack.auth):
        return None
    text = ""
    if attack.tls:
        text += (f"tls_server_config:\n  cert_file: {pki.server.cert}\n"
                 f"  key_file: {pki.server.key}\n")
    if attack.auth:
        text += f"basic_auth_users:\n  prometheus: '{bcrypt_hash(PASSWORD, 10)}'\n"
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


def _endpoint_process(exporter: Any) -> psutil.Process | None:
    pid = getattr(exporter.server, "endpoint_pid", None)  # absent before the redesign
    return psutil.Process(pid) if pid else None


def _record(figures: Figures) -> None:
    print(f"\n{json.dumps(asdict(figures))}")
    report = os.environ.get("ATTACK_REPORT")
    if report:
        with open(report, "a") as fh:
            fh.write(json.dumps(asdict(figures)) + "\n")


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.mode + ("_tls" if a.tls else "")
                                                  + ("_auth" if a.auth else "")
                                                  for a in ATTACKS])
async def test_attack_leaves_the_worker_and_the_scraper_alone(sim, pki, tmp_path, attack):
    config = web_config(tmp_path, pki, attack)
    async with harness.run_worker(sim, web_config=config) as w:
        me = psutil.Process()
        await w.scrape() if not (attack.tls or attack.auth) else None
        base_rss, base_fds, base_threads = me.memory_info().rss, me.num_fds(), me.num_threads()
        peak_rss, peak_fds, peak_threads = base_rss, base_fds, base_threads
        endpoint = _endpoint_process(w.exporter)
        ep_rss, ep_fds = 0, 0
        flags = ["--seconds", str(SECONDS)] + (["--tls"] if attack.tls else []) + (
            ["--auth", f"prometheus:{PASSWORD}"] if attack.auth else [])
        port = str(w.exporter.server.port)
        # the attacker stands for a remote machine: it gets no more CPU than the endpoint;
        # the scraper is a process of its own, so the attack's sockets do not slow it
        attacker = await asyncio.create_subprocess_exec(
            "nice", "-n", "10", sys.executable, str(ATTACKER), attack.mode, port,
            "--conns", str(attack.conns), "--no-scraper", *flags,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ATTACKER), "none", port, *flags,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        offers: list[float] = []
        unanswered = 0
        loop = asyncio.get_running_loop()
        communicate = asyncio.ensure_future(proc.communicate())
        while not communicate.done():
            start = loop.time()
            answer = await sim.offer(w.worker_id, agent_name="agent", assign=False)
            if answer.timed_out or answer.closed:
                unanswered += 1
            else:
                offers.append(loop.time() - start)
            peak_rss = max(peak_rss, me.memory_info().rss)
            peak_fds = max(peak_fds, me.num_fds())
            peak_threads = max(peak_threads, me.num_threads())
            if endpoint is not None:
                try:
                    ep_rss = max(ep_rss, endpoint.memory_info().rss)
                    ep_fds = max(ep_fds, endpoint.num_fds())
                except psutil.Error:
                    endpoint = _endpoint_process(w.exporter)
            await asyncio.sleep(0.2)
        out, err = await communicate
        assert proc.returncode == 0, err.decode()[-2000:]
        result = json.loads(out.decode().strip().splitlines()[-1])
        a_out, a_err = await attacker.communicate()
        assert attacker.returncode == 0, a_err.decode()[-2000:]
        result["attack"] = json.loads(a_out.decode().strip().splitlines()[-1])["attack"]
        offers.sort()
        figures = Figures(
            attack=attack.name,
            rss_growth_mb=round((peak_rss - base_rss) / 2**20, 1),
            fd_growth=peak_fds - base_fds, thread_growth=peak_threads - base_threads,
            endpoint_peak_rss_mb=round(ep_rss / 2**20, 1) if ep_rss else None,
            endpoint_peak_fds=ep_fds or None,
            scrape_success=round(result["scrape_ok"] / max(1, result["scrape_attempts"]), 3),
            scrape_attempts=result["scrape_attempts"],
            longest_lockout_s=result["longest_lockout_s"],
            offers=len(offers), offers_unanswered=unanswered,
            offer_p50_ms=round(statistics.median(offers) * 1000, 1) if offers else -1,
            offer_p99_ms=round(offers[min(len(offers) - 1, int(0.99 * len(offers)))] * 1000, 1)
            if offers else -1,
            attacker={k: result[k] for k in ("attack", "scrape_failures", "scrape_p50")})
        _record(figures)
        assert figures.rss_growth_mb * 2**20 <= MAX_RSS_GROWTH, figures
        assert figures.fd_growth <= MAX_FD_GROWTH, figures
        assert figures.thread_growth <= MAX_THREAD_GROWTH, figures
        assert figures.scrape_success >= MIN_SCRAPE_SUCCESS, figures
        assert figures.longest_lockout_s <= MAX_LOCKOUT_S, figures
        assert unanswered == 0 and figures.offer_p99_ms <= MAX_OFFER_P99_S * 1000, figures
        s = await w.scrape() if not (attack.tls or attack.auth) else None
        if s is not None:
            assert s.value("livekit_agents_exporter_errors_total", component="http_server") == 0
