"""The fake server's protocol edges: auth, dispatch outcomes, ground-truth metrics."""

from __future__ import annotations

import aiohttp
import pytest

from livekit_agents_exporter.simulator import Simulator, SimulatorConfig

SECRET = "simulator-test-secret-long-enough-for-hs256"


@pytest.fixture
async def sim():
    s = Simulator(SimulatorConfig(api_key="k", api_secret=SECRET, seed=1))
    await s.start()
    yield s
    await s.stop()


async def test_worker_socket_requires_an_agent_token(sim):
    from livekit import api

    url = sim.url.replace("ws://", "http://") + "/agent"
    room_only = (api.AccessToken("k", SECRET).with_identity("u")
                 .with_grants(api.VideoGrants(room_join=True, room="r"))
                 .to_jwt())
    wrong_secret = (api.AccessToken("k", "another-secret-that-is-long-enough-xx")
                    .with_grants(api.VideoGrants(agent=True)).to_jwt())
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": f"Bearer {room_only}"},
                        {"Authorization": f"Bearer {wrong_secret}"}):
            async with session.get(url, headers=headers) as resp:
                assert resp.status == 401


async def test_dispatch_without_workers_is_lost_and_counted(sim):
    result = await sim.dispatch("nobody", {"duration": 1})
    assert result.outcome == "no_worker_available" and result.attempts == 0
    assert sim.truth.outcomes_for_agent("nobody") == {"no_worker_available": 1}
    async with aiohttp.ClientSession() as session:
        async with session.get(sim.metrics_url) as resp:
            text = await resp.text()
    assert ('livekit_simulator_dispatches_total{agent_name="nobody",'
            'outcome="no_worker_available"} 1.0') in text


async def test_port_in_use_is_a_clear_error(sim):
    port = int(sim.url.rsplit(":", 1)[1])
    other = Simulator(SimulatorConfig(port=port))
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
        await other.start()
