"""No secret a worker holds ever reaches a page the endpoint serves.

A real worker runs with a distinctive API key and secret, takes a job whose metadata,
room name and participant identity are distinctive too, and then every page is
fetched (both exposition formats, landing page, health, error pages): none may
contain any of those strings, nor the basic-auth password used to fetch them.
"""

from __future__ import annotations

import base64
import json

import aiohttp
import pytest

import worker_harness as harness

SECRET_METADATA = "meta-5f1c9e-do-not-leak"
AGENT_IDENTITY = "agent-identity-0b7d2a-do-not-leak"


@pytest.fixture
def distinctive_credentials(monkeypatch):
    if harness is None:
        pytest.skip("dispatch simulator not available")
    monkeypatch.setattr(harness, "API_KEY", "APIkey9c2e4f-do-not-leak")
    monkeypatch.setattr(harness, "API_SECRET", "secret-7a3d1b8e6f-do-not-leak-" + "x" * 16)
    return harness.API_KEY, harness.API_SECRET


async def test_no_secret_in_any_served_page(distinctive_credentials):
    api_key, api_secret = distinctive_credentials
    sim = harness.Simulator(harness.SimulatorConfig(api_key=api_key, api_secret=api_secret,
                                                    host="127.0.0.1", port=0, seed=11))
    await sim.start()
    seen: dict[str, str] = {}

    async def on_request(req):
        seen["room"] = req.room.name
        seen["job_id"] = req.id
        seen["metadata"] = req.job.metadata
        participant = getattr(req, "publisher", None) or getattr(req.job, "participant", None)
        if participant is not None and getattr(participant, "identity", ""):
            seen["participant"] = participant.identity
        await req.accept(identity=AGENT_IDENTITY)

    try:
        async with harness.run_worker(sim, on_request=on_request) as w:
            result = await sim.dispatch(agent_name="agent",
                                        metadata={"duration": 0.2, "note": SECRET_METADATA})
            assert result.outcome == "assigned"
            await harness.eventually(lambda: w.metric("livekit_agents_jobs_finished_total"),
                                     what="the job to finish")
            secrets = {api_key, api_secret, SECRET_METADATA, AGENT_IDENTITY,
                       seen["room"], seen["job_id"], *([seen["participant"]]
                                                        if "participant" in seen else [])}
            secrets.add(json.dumps({"duration": 0.2, "note": SECRET_METADATA}))
            assert SECRET_METADATA in seen["metadata"]  # the worker did hold it
            pages = await fetch_everything(w.exporter.url.rsplit("/", 1)[0])
    finally:
        await sim.stop()

    assert pages["/metrics"].count("livekit_agents_jobs_finished_total") >= 1
    for name, body in pages.items():
        for secret in secrets:
            if len(secret) >= 8:  # room/job ids are long random strings
                assert secret not in body, f"{secret!r} leaked into {name}"
        # nor a prefix long enough to be recognisable
        assert api_secret[:12] not in body and api_key[:10] not in body, name


async def fetch_everything(base: str) -> dict[str, str]:
    requests = {
        "/metrics": ("GET", "/metrics", {}),
        "/metrics (openmetrics)": ("GET", "/metrics",
                                   {"Accept": "application/openmetrics-text; version=1.0.0"}),
        "/": ("GET", "/", {}),
        "/healthz": ("GET", "/healthz", {}),
        "404": ("GET", "/jobs", {}),
        "405": ("POST", "/metrics", {}),
        "401-style header": ("GET", "/metrics", {"Authorization": "Basic "
                                                 + base64.b64encode(b"u:p").decode()}),
    }
    pages = {}
    async with aiohttp.ClientSession() as session:
        for name, (method, path, headers) in requests.items():
            async with session.request(method, base + path, headers=headers) as resp:
                pages[name] = "\n".join(f"{k}: {v}" for k, v in resp.headers.items()) + "\n" + \
                    await resp.text()
    return pages
