"""A hostile client and a well-behaved scraper, in a process of their own (loopback only).

    python attacker.py MODE PORT --seconds S [--conns N] [--tls] [--auth USER:PASSWORD]

Runs attack MODE against 127.0.0.1:PORT for S seconds while a scraper, from source address
127.0.0.2 (another client, as Prometheus is on a pod network), scrapes ``/metrics`` every
0.25 s with a 5 s timeout. Prints one JSON line: the scraper's attempts, successes and
latencies, and what the attack saw. Bounded in time and in connections.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import resource
import ssl
import time
from typing import Any

HOST = "127.0.0.1"
SCRAPER_SOURCE = "127.0.0.2"
MAX_CONNS = 4000


def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _open(port: int, tls: bool = False, source: str | None = None) -> Any:
    return await asyncio.wait_for(asyncio.open_connection(
        HOST, port, ssl=_insecure() if tls else None,
        local_addr=(source, 0) if source else None), 5)


async def _open_counted(port: int, tls: bool, stats: dict[str, int]) -> Any:
    """A connection counted as opened, or None after counting the error and backing off."""
    try:
        conn = await _open(port, tls)
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        stats["errors"] += 1
        await asyncio.sleep(0.2)
        return None
    stats["opened"] += 1
    return conn


async def _close(writer: Any) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1)
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        pass


# -- attacks ----------------------------------------------------------------------------------
async def oversized_headers(port: int, stop: float, stats: dict[str, int], a: Any) -> None:
    """Requests with a 64 KB header, in a loop, as fast as the server answers."""
    big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    while time.monotonic() < stop:
        try:
            reader, writer = await _open(port, a.tls)
            writer.write(big)
            await asyncio.wait_for(reader.read(4096), 5)
            stats["requests"] += 1
            await _close(writer)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            stats["errors"] += 1
            await asyncio.sleep(0.05)


async def idle(port: int, stop: float, stats: dict[str, int], a: Any) -> None:
    """Connect and send nothing (on a TLS port: a handshake never started); reconnect when
    the server closes, so the server always faces ``conns`` idle sockets."""
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
        except (OSError, asyncio.TimeoutError):
            stats["errors"] += 1
            await asyncio.sleep(0.2)
            continue
        stats["opened"] += 1
        try:
            await asyncio.wait_for(reader.read(1), max(0.01, stop - time.monotonic()))
            stats["closed_by_server"] += 1
        except (OSError, asyncio.TimeoutError):
            pass
        await _close(writer)


async def keepalive(port: int, stop: float, stats: dict[str, int], a: Any) -> None:
    """Keep-alive clients that each send a request every 8 s on the same connection."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    while time.monotonic() < stop:
        conn = await _open_counted(port, a.tls, stats)
        if conn is None:
            continue
        reader, writer = conn
        try:
            while time.monotonic() < stop:
                writer.write(head)
                data = await asyncio.wait_for(reader.readuntil(b"OK\n"), 5)
                stats["requests"] += bool(data)
                await asyncio.sleep(8.0)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
            stats["closed_by_server"] += 1
        await _close(writer)


async def slowloris(port: int, stop: float, stats: dict[str, int], a: Any) -> None:
    """A request whose headers arrive one byte a second, never finished."""
    while time.monotonic() < stop:
        conn = await _open_counted(port, a.tls, stats)
        if conn is None:
            continue
        reader, writer = conn
        try:
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            while time.monotonic() < stop:
                writer.write(b"a")
                await writer.drain()
                try:
                    if not await asyncio.wait_for(reader.read(1), 1.0):
                        stats["closed_by_server"] += 1
                        break
                except asyncio.TimeoutError:
                    continue
        except (OSError, ssl.SSLError):
            stats["closed_by_server"] += 1
        await _close(writer)


async def wrong_passwords(port: int, stop: float, stats: dict[str, int], a: Any) -> None:
    """Distinct wrong passwords for the real user, as fast as the server answers."""
    user = (a.auth or "prometheus:x").split(":", 1)[0]
    i = 0
    while time.monotonic() < stop:
        i += 1
        token = base64.b64encode(f"{user}:guess-{id(stats)}-{i}".encode()).decode()
        try:
            reader, writer = await _open(port, a.tls)
            writer.write(f"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n"
                         "Connection: close\r\n\r\n".encode())
            line = await asyncio.wait_for(reader.readline(), 10)
            stats[line[9:12].decode() or "none"] += 1
            await _close(writer)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            stats["errors"] += 1
            await asyncio.sleep(0.05)


ATTACKS = {"oversized_headers": oversized_headers, "idle": idle, "keepalive": keepalive,
           "slowloris": slowloris, "wrong_passwords": wrong_passwords, "none": None}


# -- the well-behaved scraper ---------------------------------------------------------------------
async def scraper(port: int, stop: float, a: Any, out: dict[str, Any]) -> None:
    auth = ""
    if a.auth:
        auth = f"Authorization: Basic {base64.b64encode(a.auth.encode()).decode()}\r\n"
    request = (f"GET /metrics HTTP/1.1\r\nHost: exporter\r\n{auth}Connection: close\r\n\r\n"
               ).encode()
    failing_since: float | None = None
    while time.monotonic() < stop:
        start = time.perf_counter()
        out["attempts"] += 1
        ok = False
        try:
            reader, writer = await _open(port, a.tls, SCRAPER_SOURCE)
            writer.write(request)
            body = await asyncio.wait_for(reader.read(), 5)
            await _close(writer)
            if body.startswith(b"HTTP/1.1 200") and b"livekit_agents_worker_load_ratio" in body:
                out["latencies"].append(time.perf_counter() - start)
                ok = True
            else:
                out["failures"].append(body[:20].decode("latin-1"))
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            out["failures"].append(type(exc).__name__)
        if ok:
            failing_since = None
        else:
            failing_since = failing_since if failing_since is not None else start
            out["lockout"] = max(out["lockout"], time.perf_counter() - failing_since)
        await asyncio.sleep(max(0.0, 0.25 - (time.perf_counter() - start)))


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=sorted(ATTACKS))
    p.add_argument("port", type=int)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--conns", type=int, default=100)
    p.add_argument("--warmup", type=float, default=1.0, help="attack alone before scraping")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--auth", default="")
    p.add_argument("--no-scraper", action="store_true", help="attack only (for --seconds)")
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns = min(a.conns, MAX_CONNS, hard - 100)
    stats: dict[str, int] = {"opened": 0, "closed_by_server": 0, "requests": 0, "errors": 0}
    stats = __import__("collections").defaultdict(int, stats)
    stop = time.monotonic() + a.seconds
    attack = ATTACKS[a.mode]
    tasks = [asyncio.create_task(attack(a.port, stop, stats, a))
             for _ in range(conns)] if attack else []
    out: dict[str, Any] = {"attempts": 0, "latencies": [], "failures": [], "lockout": 0.0}
    if not a.no_scraper:
        await asyncio.sleep(a.warmup)
        await scraper(a.port, stop, a, out)
    await asyncio.gather(*tasks, return_exceptions=True)
    lat = sorted(out["latencies"])
    print(json.dumps({"mode": a.mode, "conns": conns, "attack": dict(stats),
                      "scrape_attempts": out["attempts"], "scrape_ok": len(lat),
                      "scrape_failures": out["failures"][:20],
                      "longest_lockout_s": round(out["lockout"], 2),
                      "scrape_p50": lat[len(lat) // 2] if lat else None,
                      "scrape_max": lat[-1] if lat else None}))


if __name__ == "__main__":
    asyncio.run(main())
