"""The bcrypt scheduling of the endpoint, in process so that bcrypt calls can be counted."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from security_support import PASSWORD, bcrypt_hash

from livekit_agents_exporter import web_config as web_config_mod
from livekit_agents_exporter.web_config import AuthGate, BasicAuth


@pytest.fixture
def count_bcrypt(monkeypatch):
    import bcrypt

    calls = []
    real = bcrypt.checkpw

    def counting(password, hashed):
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


def gate(**kw) -> AuthGate:
    auth = BasicAuth({"prometheus": bcrypt_hash(PASSWORD).encode()}, **kw)
    return AuthGate(auth, ThreadPoolExecutor(max_workers=1), per_client=4, max_wait=5.0)


def test_successes_and_failures_are_remembered(count_bcrypt):
    async def run():
        g = gate()
        assert await g.check("prometheus", PASSWORD.encode(), "a") == "ok"
        assert await g.check("prometheus", PASSWORD.encode(), "a") == "ok"
        assert await g.check("prometheus", b"wrong", "a") == "denied"
        assert await g.check("prometheus", b"wrong", "a") == "denied"
    asyncio.run(run())
    assert len(count_bcrypt) == 2, count_bcrypt  # one per distinct credential


def test_unknown_users_cost_a_bcrypt_check_too(count_bcrypt):
    async def run():
        assert await gate().check("mallory", PASSWORD.encode(), "a") == "denied"
    asyncio.run(run())
    assert count_bcrypt == [web_config_mod._DECOY_HASH]  # same work as for a real user


def test_a_flooding_address_cannot_keep_the_scraper_out(count_bcrypt):
    """Cold cache (just restarted), one address floods distinct guesses: the scraper's
    address gets the next check, not the flood's leftovers."""
    async def run():
        g = gate(uncached_interval=0.05, uncached_burst=2)
        flood = [asyncio.create_task(g.check("prometheus", f"g{i}".encode(), "10.0.0.9"))
                 for i in range(40)]
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        verdict = await g.check("prometheus", PASSWORD.encode(), "10.0.0.2")
        waited = loop.time() - start
        results = await asyncio.gather(*flood)
        return verdict, waited, results
    verdict, waited, results = asyncio.run(run())
    assert verdict == "ok"
    assert results.count("busy") == 36, results  # the flood's own queue holds 4
    assert len(count_bcrypt) <= 1 + 4, count_bcrypt
    assert waited < 1.0, waited  # at most one flood check went first


def test_bcrypt_spending_stays_under_the_budget(count_bcrypt):
    async def run():
        g = gate(uncached_interval=0.2, uncached_burst=2)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(6):
            await g.check("prometheus", f"g{i}".encode(), f"10.0.0.{i}")
        return loop.time() - start
    elapsed = asyncio.run(run())
    assert len(count_bcrypt) == 6
    assert elapsed >= 0.2 * (6 - 2) * 0.9, elapsed  # burst of 2, then one per 0.2 s
