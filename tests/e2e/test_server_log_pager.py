"""A lost dispatch reaches a webhook through livekit-server's log: simulator log -> filter
-> mtail -> Prometheus (shipped rules) -> Alertmanager -> webhook; and the log-derived
counts equal the simulator's ground truth."""

from __future__ import annotations

import asyncio

import pytest
from server_log_scenario import ServerLogConfig, ServerLogTimeline, describe, run

from binaries import require_binary

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# scrape 1 s + evaluation 1 s + group_wait 1 s, and slack for a loaded machine
PAGE_BOUND = 15.0


@pytest.fixture(scope="module")
def tl(tmp_path_factory: pytest.TempPathFactory) -> ServerLogTimeline:
    cfg = ServerLogConfig(prometheus=require_binary("prometheus", "prometheus"),
                          alertmanager=require_binary("prometheus-alertmanager",
                                                   "prometheus-alertmanager"),
                          mtail=require_binary("mtail", "mtail"))
    timeline = asyncio.run(run(cfg, tmp_path_factory.mktemp("server-log-pager")))
    print(describe(timeline))
    return timeline


def test_first_lost_dispatch_pages_with_its_cause(tl: ServerLogTimeline) -> None:
    assert tl.page is not None and tl.first_loss is not None, describe(tl)
    assert 0 < tl.page_latency < PAGE_BOUND, describe(tl)
    alert = tl.page.alerts[0]
    assert alert["labels"]["agent_name"] == "pager"
    assert alert["labels"]["severity"] == "critical"
    cause = alert["labels"]["cause"]
    assert cause in ("no_capacity", "all_refused"), describe(tl)
    assert f"cause {cause}:" in alert["annotations"]["description"], alert


def test_fast_burn_slo_pages_on_the_same_losses(tl: ServerLogTimeline) -> None:
    assert tl.fast_burn_page is not None, describe(tl)
    assert tl.fast_burn_page.alerts[0]["labels"]["severity"] == "critical"


def test_log_derived_counts_equal_the_ground_truth(tl: ServerLogTimeline) -> None:
    truth_lost = tl.truth.get("no_worker_available", 0) + tl.truth.get("availability_timeout", 0)
    assert truth_lost >= 1 and tl.truth.get("rejected_terminate", 0) == 0, describe(tl)
    mtail_lost = sum(v for k, v in tl.mtail_counts.items()
                     if k.startswith("livekit_agents_server_dispatches_lost_total{"))
    assert mtail_lost == truth_lost == tl.prometheus_counts["lost"], describe(tl)
    assert (tl.mtail_counts["livekit_agents_server_dispatches_assigned_total"]
            == tl.truth["assigned"] == tl.prometheus_counts["assigned"]), describe(tl)
    assert tl.mtail_counts.get("livekit_agents_server_log_unparsed_lines_total", 0) == 0
    assert tl.heartbeats >= 1, describe(tl)
