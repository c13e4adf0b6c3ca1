"""The pager path end to end: a real fleet saturates, real Prometheus evaluates the bundled
rules, real Alertmanager delivers the page to a webhook, and everything resolves.

The scenario (``pager_scenario.py``) runs once per module; each test checks one promise
on its timeline, so a broken link names itself. ``report.py`` prints the same run's
figures for ``docs/PAGER_PATH.md``.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from pager_scenario import (
    CAPACITY_LOW,
    EARLY_WARNINGS,
    EXHAUSTION,
    LOST,
    NO_CAPACITY,
    REJECTIONS,
    TIMEOUTS,
    ScenarioConfig,
    Timeline,
    describe,
    figures,
    healthy_false_alerts,
    run_scenario,
    scenario_rules,
)

from binaries import require_binary
from livekit_agents_exporter.rules import render_rules
from livekit_agents_exporter.rules.alertmanager import PAGER, TICKET

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# On top of the floor (scrape + evaluation + for:): the alert group may see the
# recording rules one evaluation late, Alertmanager waits group_wait, and CI is slow.
SLACK = 10.0
EXPECTED_ALERTS = {NO_CAPACITY, CAPACITY_LOW, EXHAUSTION, REJECTIONS, TIMEOUTS}


@pytest.fixture(scope="module")
def tl(tmp_path_factory: pytest.TempPathFactory) -> Timeline:
    cfg = ScenarioConfig(prometheus=require_binary("prometheus", "prometheus"),
                         alertmanager=require_binary("prometheus-alertmanager",
                                                  "prometheus-alertmanager"))
    timeline = asyncio.run(run_scenario(cfg, tmp_path_factory.mktemp("pager-path")))
    print(describe(timeline))
    return timeline


def _rule(tl: Timeline, alertname: str) -> dict:
    groups = render_rules(tl.rules)["groups"]
    return next(r for g in groups for r in g["rules"] if r.get("alert") == alertname)


def test_the_scenario_runs_every_phase_to_the_end(tl):
    assert not tl.failures, describe(tl)
    assert list(tl.phases) == ["healthy", "ramp", "saturation", "recovery", "bursts",
                               "burst_recovery", "assignment_timeouts", "settle"], describe(tl)


def test_bursty_healthy_traffic_pages_nobody(tl):
    start, end = tl.phase("healthy")
    healthy = [d for d in tl.dispatches if d.phase == "healthy"]
    assert len(healthy) >= 15, "the healthy phase sent too little traffic to mean anything"
    assert {d.outcome for d in healthy} == {"assigned"}, describe(tl)
    assert healthy_false_alerts(tl) == set(), describe(tl)
    assert not [n for n in tl.notifications if start <= n.received < end], describe(tl)


def test_the_ramp_fills_the_fleet_slot_by_slot_and_the_next_dispatch_is_lost(tl):
    cfg = tl.config
    assert tl.fleet_full is not None and tl.first_loss is not None, describe(tl)
    if tl.refuses_when_full:
        # 1.8: exactly the usable slots are taken, and the very next arrival is lost
        assert tl.ramp_jobs == cfg.slots, describe(tl)
        first_after_full = next(d for d in tl.dispatches if d.at >= tl.fleet_full)
        assert first_after_full.outcome == LOST
    else:
        # 1.2 accepts offers a stale AVAILABLE status still brings: a few more fit
        assert tl.ramp_jobs >= cfg.slots, describe(tl)
    assert tl.first_loss - tl.fleet_full < 5, describe(tl)
    assert tl.truth_outcomes.get(LOST, 0) == len(tl.lost()) >= 10, describe(tl)


def test_an_early_warning_reaches_the_webhook_before_the_first_lost_dispatch(tl):
    ramp_start, _ = tl.phase("ramp")
    warned = [n for name in EARLY_WARNINGS for n in [tl.received(name)] if n is not None]
    assert warned, describe(tl)
    first = min(n.received for n in warned)
    assert ramp_start < first < tl.first_loss, describe(tl)
    # and the page itself does not come before anything was lost
    page = tl.received(NO_CAPACITY)
    assert page is not None and page.received > tl.first_loss, describe(tl)


def test_the_page_arrives_within_its_floor_while_dispatches_are_being_lost(tl):
    f = figures(tl)
    page = tl.received(NO_CAPACITY)
    assert page is not None, describe(tl)
    lost = tl.lost()
    assert lost[0].at <= page.received <= lost[-1].at, describe(tl)
    assert f.page_after_loss is not None
    assert 0 < f.page_after_loss <= f.floor + tl.config.group_wait + SLACK, describe(tl)


def test_the_page_carries_the_documented_labels_and_annotations(tl):
    cfg = tl.config
    page = tl.received(NO_CAPACITY)
    assert page is not None, describe(tl)
    assert page.receiver == PAGER, describe(tl)  # the shipped routing: critical pages
    (alert,) = page.alerts
    rule = _rule(tl, NO_CAPACITY)
    assert alert["labels"] == {"alertname": NO_CAPACITY, "severity": "critical",
                               "concern": "capacity", "agent_name": cfg.agent_name,
                               "cluster": cfg.cluster}
    notes = alert["annotations"]
    assert set(notes) == {"summary", "description", "runbook_url"}
    assert notes["summary"] == rule["annotations"]["summary"]
    assert notes["runbook_url"] == rule["annotations"]["runbook_url"]
    assert notes["runbook_url"].endswith("runbooks.md#livekitagentsnocapacity")
    # the evidence, queried when it fired: how many workers could take a job, refusals,
    # seconds all full
    match = re.fullmatch(
        rf'Callers of agent "{cfg.agent_name}" in cluster {cfg.cluster} are being lost for '
        rf"lack of capacity: of its {cfg.workers} workers, (\d+) can take a job now; in the "
        rf"last \S+ they refused (\d+) job offers as full or draining \((\d+) of them refused "
        rf"at least one\) and were all full at once for at least (\d+)s\. The LiveKit server "
        rf'drops a dispatch no worker takes \("no worker available"\)\.', notes["description"])
    assert match, notes["description"]
    available, refused, refusing, _ = map(int, match.groups())
    assert available < cfg.workers and refusing <= cfg.workers, notes["description"]
    if tl.refuses_when_full:
        assert refused > 0, notes["description"]


def test_bursty_losses_page_within_the_floor_while_the_fleet_looks_available(tl):
    """Bursts lose dispatches while Prometheus sees a free worker at most evaluations: the
    page still comes within its floor of the first loss, and never before a loss."""
    cfg = tl.config
    f = figures(tl)
    assert len(tl.burst_outcomes) == cfg.bursts, describe(tl)
    assert f.burst_available_share is not None and f.burst_available_share > 0.5, describe(tl)
    bursts_start, bursts_end = tl.phase("bursts")
    page = tl.received(NO_CAPACITY, after=bursts_start)
    if tl.refuses_when_full:
        # 1.8: the burst's jobs hold every usable slot until the whole burst is answered,
        # so every burst loses dispatches, whatever the machine's speed (its reserved-slot
        # estimate may let a worker take one more than its threshold at the edge)
        for outcomes in tl.burst_outcomes:
            assert outcomes.count(LOST) >= 1, describe(tl)
            assert outcomes.count("assigned") <= cfg.slots + cfg.workers, describe(tl)
    if f.burst_lost == 0:
        # 1.2 never refuses by itself: it accepts every offer of a burst and runs more jobs
        # than its threshold allows, so nothing is lost (a page then says that the next
        # caller would be: every worker reports full)
        assert not tl.refuses_when_full, describe(tl)
        assert tl.peak_jobs.get("bursts", 0) > cfg.slots, describe(tl)
        return
    assert page is not None and page.received < bursts_end + SLACK, describe(tl)
    assert tl.burst_first_loss is not None and page.received > tl.burst_first_loss, describe(tl)
    assert f.burst_page_after_loss is not None, describe(tl)
    assert 0 < f.burst_page_after_loss <= f.floor + cfg.group_wait + SLACK, describe(tl)


def test_offers_refused_by_full_workers_raise_the_rejection_alert_under_the_page(tl):
    refused = sum(1 for _, available in tl.in_flight if not available)
    rejected = tl.exporter_totals.get("livekit_agents_job_requests_rejected_total")
    if tl.refuses_when_full:
        first_loss, recovery = tl.first_loss, tl.phase("recovery")[0]
        episode = tl.episode(REJECTIONS, after=first_loss)
        assert episode is not None and episode.firing_seen is not None, describe(tl)
        assert first_loss < episode.firing_seen < recovery, describe(tl)
        # the shipped Alertmanager routing inhibits it while NoCapacity pages for the agent
        page, resolved = tl.received(NO_CAPACITY), tl.received(NO_CAPACITY, "resolved")
        assert page is not None and resolved is not None, describe(tl)
        ticket = tl.received(REJECTIONS)
        assert ticket is None or not (page.received < ticket.received < resolved.received
                                      - 0.5), describe(tl)
        assert ticket is None or ticket.alerts[0]["labels"]["severity"] == "warning"
        assert refused == len(tl.in_flight) > 0
        assert rejected is not None and rejected >= refused
    else:  # 1.2 never refuses by itself: it accepts and oversubscribes
        assert tl.received(REJECTIONS) is None, describe(tl)
        assert refused == 0 and rejected == 0


def test_everything_resolves_once_the_fleet_recovers(tl):
    recovery, _ = tl.phase("recovery")
    timeouts_start, _ = tl.phase("assignment_timeouts")
    fired = tl.fired_names(0, recovery)
    assert {NO_CAPACITY, EXHAUSTION} <= fired, describe(tl)
    bursts_start, _ = tl.phase("bursts")
    for name in fired:
        resolved = tl.received(name, "resolved", after=recovery)
        assert resolved is not None and resolved.received < bursts_start, describe(tl)
        assert all(a["status"] == "resolved" for a in resolved.alerts)
    # nothing but the timeout alert is still active in Prometheus afterwards
    still = {e.alertname for e in tl.episodes if e.last_seen > timeouts_start + 1}
    assert still <= {TIMEOUTS}, describe(tl)


def test_withheld_assignments_raise_the_assignment_timeout_alert(tl):
    f = figures(tl)
    alert = tl.received(TIMEOUTS)
    assert alert is not None and tl.first_withheld is not None, describe(tl)
    assert alert.alerts[0]["labels"]["severity"] == "warning"
    assert f.timeout_page is not None
    # the worker's own 7.5 s timeout comes first: the alert cannot be earlier than that
    assert 7.5 < f.timeout_page <= f.timeout_floor + tl.config.group_wait + SLACK, describe(tl)


def test_only_the_expected_alerts_fire_and_none_flaps(tl):
    names = tl.fired_names()
    assert names <= EXPECTED_ALERTS, describe(tl)
    # once per episode of trouble: the ramp's saturation, then the bursts
    episodes_of_trouble = [(tl.phase("healthy")[0], tl.phase("bursts")[0]),
                           (tl.phase("bursts")[0], tl.phase("assignment_timeouts")[0]),
                           (tl.phase("assignment_timeouts")[0], float("inf"))]
    for name in names:
        for start, end in episodes_of_trouble:
            episodes = {e.active_at for e in tl.episodes if e.alertname == name
                        and e.firing_seen is not None and start <= e.firing_seen < end}
            assert len(episodes) <= 1, f"{name} fired {len(episodes)} times\n{describe(tl)}"


def test_warnings_go_to_the_ticket_receiver(tl):
    for n in tl.notifications:
        severity = n.alerts[0]["labels"]["severity"]
        assert n.receiver == {"critical": PAGER, "warning": TICKET}[severity], describe(tl)


def test_exporter_totals_equal_the_simulator_ground_truth(tl):
    assert tl.truth_totals, describe(tl)
    assert tl.exporter_totals == tl.truth_totals, describe(tl)
    assert tl.prometheus_totals == tl.truth_totals, describe(tl)
    totals = tl.truth_totals
    assert totals["livekit_agents_job_requests_total"] >= 50
    assert totals["livekit_agents_assignment_timeouts_total"] == tl.config.withheld_jobs
    if tl.refuses_when_full:
        assert totals["livekit_agents_job_requests_rejected_total"] > 0


def test_rules_under_test_are_the_shipped_pack_with_scaled_durations():
    """What the scenario loads differs from alerts/ only in for:, windows and lookbacks."""
    cfg = ScenarioConfig()
    rules = scenario_rules(cfg)
    assert rules.alert("no_capacity").for_.seconds == 1.0  # 1m
    # its window keeps the production number of scrapes in it: 2m at 15 s = 8 at 1 s
    assert rules.alert("no_capacity").params["window"].seconds == 8 * cfg.scrape_interval
    assert rules.alert("capacity_low").for_.seconds == 15.0  # 15m
    assert rules.alert("capacity_exhaustion_predicted").params["lookback"].seconds == 60.0
    assert rules.alert("capacity_low").params["headroom_below"] == 0.2
    assert rules.selector == 'job="livekit-agents"'
