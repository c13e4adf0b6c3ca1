"""Out-of-process HTTP clients for the reliability suite: a slowloris and a scraper.

Run as ``python http_load.py HOST PORT --slow N --seconds S [--scrape-every T]``. It
keeps N connections that each send a request one header byte per second (opening a
new one whenever the server closes one, as a real slowloris does) and, meanwhile,
scrapes ``/metrics`` like Prometheus would, timing each scrape. Prints one JSON line
of figures. Everything is bounded in time and count and targets loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

REQUEST_HEAD = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n"


async def slow_client(host: str, port: int, stop: float, stats: dict[str, int]) -> None:
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            stats["connect_failed"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["opened"] += 1
        try:
            writer.write(REQUEST_HEAD)
            i = 0
            while time.monotonic() < stop:
                writer.write(bytes([b"abcdefgh"[i % 8]]))  # one header byte a second
                await writer.drain()
                i += 1
                try:
                    data = await asyncio.wait_for(reader.read(1), timeout=1.0)
                except asyncio.TimeoutError:
                    continue
                if not data:  # closed by the server
                    stats["closed_by_server"] += 1
                    break
                stats["answered"] += 1  # the server answered our garbage: also a closure
                break
        except (ConnectionError, OSError):
            stats["closed_by_server"] += 1
        finally:
            writer.close()


async def scraper(host: str, port: int, stop: float, every: float, out: list[float],
                  failures: list[str]) -> None:
    request = f"GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < stop:
        start = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            writer.write(request)
            body = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            if not body.startswith(b"HTTP/1.1 200"):
                failures.append(body[:40].decode("latin-1"))
            else:
                out.append(time.perf_counter() - start)
        except (OSError, asyncio.TimeoutError) as exc:
            failures.append(type(exc).__name__)
        await asyncio.sleep(every)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--slow", type=int, default=200)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--scrape-every", type=float, default=0.2)
    p.add_argument("--warmup", type=float, default=1.0, help="attack alone before scraping")
    args = p.parse_args()
    assert args.host in ("127.0.0.1", "::1", "localhost"), "loopback only"
    stats = {"opened": 0, "closed_by_server": 0, "answered": 0, "connect_failed": 0}
    stop = time.monotonic() + args.seconds
    slow = [asyncio.create_task(slow_client(args.host, args.port, stop, stats))
            for _ in range(min(args.slow, 2000))]
    await asyncio.sleep(args.warmup)
    latencies: list[float] = []
    failures: list[str] = []
    await scraper(args.host, args.port, stop, args.scrape_every, latencies, failures)
    await asyncio.gather(*slow)
    latencies.sort()

    def q(x: float) -> float:
        return latencies[min(len(latencies) - 1, int(x * len(latencies)))] if latencies else -1

    print(json.dumps({**stats, "scrapes": len(latencies), "scrape_failures": failures,
                      "scrape_p50": q(0.5), "scrape_p99": q(0.99),
                      "scrape_max": latencies[-1] if latencies else -1}))


if __name__ == "__main__":
    asyncio.run(main())
