"""JobLaunchesFailing end to end: a real worker whose ``prewarm`` raises in every job process
(the SDK's default process executor), scraped by a real Prometheus evaluating the shipped
rules, paged through a real Alertmanager running the shipped routing
(``alerts/alertmanager.example.yaml``), as the pager-path test does.

The server's offer is accepted and assigned, and no job process ever starts: on 1.8 the SDK
gives up after three attempts ("failed to acquire process for job"), counted as
``job_process_failures_total{reason="acquire"}``; 1.2 only logs the initialisation failures
and waits for a process for ever, so the page comes from the alert's other branch, jobs
assigned and none launched. Durations are scaled by 1/60 as in ``pager_scenario.py``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from pager_scenario import SCRAPE_JOB, ScenarioConfig, Webhook, render_rules, scenario_rules

from binaries import require_binary
from livekit_agents_exporter.prometheus_runner import Alertmanager, Prometheus, ScrapeTarget
from livekit_agents_exporter.rules.alertmanager import PAGER, alertmanager_config
from worker_harness import NEW_SDK, eventually, sim  # noqa: F401 - sim is a fixture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "user_scripts"))
from scripts import prewarm_raises, run_script  # noqa: E402 - the user-script runner, on the path above

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

AGENT = "launchfail"
ALERT = "LiveKitAgentsJobLaunchesFailing"
CLUSTER = "e2e"

PREWARM_RAISES = prewarm_raises(AGENT)


async def test_a_worker_whose_job_processes_cannot_start_pages(sim, tmp_path):  # noqa: F811 - fixture
    cfg = ScenarioConfig(prometheus=require_binary("prometheus", "prometheus"),
                         alertmanager=require_binary("prometheus-alertmanager",
                                                     "prometheus-alertmanager"))
    rules = scenario_rules(cfg)
    notifications: list = []
    webhook = Webhook(notifications)
    await webhook.start()
    path = tmp_path / "agent.py"
    path.write_text(PREWARM_RAISES)
    am = prom = None
    try:
        async with run_script(path, sim.url, tmp_path) as script:
            await script.scrape_when_up()
            await sim.wait_for_workers(1, agent_name=AGENT, timeout=60)
            (tmp_path / "am").mkdir()
            am = Alertmanager(binary=cfg.alertmanager, workdir=tmp_path / "am",
                              config=alertmanager_config(rules, pager_url=webhook.url,
                                                         ticket_url=webhook.url,
                                                         group_wait="1s", group_interval="1s",
                                                         repeat_interval="1h"))
            await asyncio.to_thread(am.start)
            rules_path = tmp_path / "rules.yaml"
            rules_path.write_text(render_rules(cfg))
            target = script.metrics_url.removeprefix("http://").removesuffix("/metrics")
            prom = Prometheus([ScrapeTarget(SCRAPE_JOB, [target], {"cluster": CLUSTER})],
                              [rules_path], binary=cfg.prometheus, scrape_interval="1s",
                              evaluation_interval="1s", alertmanager_url=am.url,
                              workdir=tmp_path / "prometheus")
            await asyncio.to_thread(prom.start)

            def scraped() -> bool:
                assert prom is not None
                return bool(prom.query(f'livekit_agents_worker_registered{{job="{SCRAPE_JOB}",'
                                       f'agent_name="{AGENT}"}} == 1'))

            await eventually(lambda: asyncio.to_thread(scraped), timeout=30,
                             what="Prometheus to scrape the registered worker")
            assert not [n for n in notifications if n.alertname == ALERT], notifications
            result = await sim.dispatch(agent_name=AGENT)
            assigned_at = time.time()
            assert result.outcome == "assigned", result

            def paged() -> bool:
                return any(n.alertname == ALERT and n.status == "firing" for n in notifications)

            await eventually(paged, timeout=90, what=f"{ALERT} to reach the webhook")
            page = next(n for n in notifications if n.alertname == ALERT)
            s = await script.scrape()
            failures = {reason: s.value("livekit_agents_job_process_failures_total",
                                        agent_name=AGENT, reason=reason)
                        for reason in ("initialize", "acquire", "launch")}
            launched = s.value("livekit_agents_jobs_launched_total", agent_name=AGENT)
    finally:
        for part in (prom, am):
            if part is not None:
                await asyncio.to_thread(part.stop)
        await webhook.stop()
    after = page.received - assigned_at
    print(f"{ALERT}: assignment -> page {after:.1f}s, failures {failures}")
    assert page.receiver == PAGER, page.receiver  # the shipped routing: critical pages
    (alert,) = page.alerts
    labels = alert["labels"]
    assert labels["severity"] == "critical" and labels["agent_name"] == AGENT, labels
    assert labels["cluster"] == CLUSTER and labels["instance"] == target, labels
    assert "could not be launched" in alert["annotations"]["description"], alert
    assert launched == 0 and sim.truth.for_agent(AGENT)[0].jobs_started == 0
    assert failures["initialize"] >= 1, failures
    # 1.8 gives up after three attempts and says so; 1.2 waits and pages on "assigned, none
    # launched"
    assert failures["acquire"] == (1 if NEW_SDK else 0), failures
    # the floor: the worker's own give-up (1.8: three process start attempts), then scrape +
    # evaluation + for: + group_wait; generous for a loaded machine
    floor = 1 + 1 + rules.alert("job_launches_failing").for_.seconds + 1
    assert 0 < after <= floor + 30, after
