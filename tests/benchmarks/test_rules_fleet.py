"""The synthetic fleet of the rule benchmark must look like a healthy fleet to the rules: a
fleet whose counters grew too slowly once made LoadStale fire on nine workers in ten,
and the benchmark then measured alert bookkeeping instead of rule cost."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from livekit_agents_exporter.rules import load_config, render_rules

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from rules_scale import (  # noqa: E402 - benchmarks/ is put on the path above
    STEP_S,
    V1_RULES,
    FleetServer,
    Shard,
    history_split,
    longest_raw_range,
    parse_template,
    template_age,
)

TEMPLATE = """\
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1000.0
# HELP livekit_agents_load_fnc_duration_seconds Time load_fnc took.
# TYPE livekit_agents_load_fnc_duration_seconds histogram
livekit_agents_load_fnc_duration_seconds_bucket{agent_name="a",le="+Inf"} 40.0
livekit_agents_load_fnc_duration_seconds_count{agent_name="a"} 40.0
livekit_agents_load_fnc_duration_seconds_sum{agent_name="a"} 0.01
# HELP livekit_agents_worker_registered Registered.
# TYPE livekit_agents_worker_registered gauge
livekit_agents_worker_registered{agent_name="a"} 1.0
"""


def _values(body: bytes, name: str) -> dict[str, float]:
    pattern = re.compile(rf'^{name}\{{instance="([^"]+)"[^}}]*\}} (\S+) \d+$', re.M)
    return {inst: float(v) for inst, v in pattern.findall(body.decode())}


def test_counters_grow_at_the_captured_workers_rate() -> None:
    families = parse_template(TEMPLATE)
    age = template_age(families, captured_at=1020.0)
    assert age == 20.0  # 40 load_fnc calls in 20 s: 2 per second, as the SDK calls it
    shard = Shard(families, [0, 1, 2], "agent-00", age)
    name = "livekit_agents_load_fnc_duration_seconds_count"
    first, later = _values(shard.render(0, 0), name), _values(shard.render(8, 0), name)
    for instance, start in first.items():
        rate = (later[instance] - start) / (8 * STEP_S)
        # each worker keeps its own traffic share (0.5x .. 1.5x) of the captured rate
        assert 1.0 <= rate <= 3.0, (instance, rate)  # far above LoadStale's 0.2/s
    assert _values(shard.render(8, 0), "livekit_agents_worker_registered") == {
        i: 1.0 for i in first}


def test_history_covers_the_longest_range_over_worker_series() -> None:
    rules = render_rules(load_config())
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    assert "livekit_agents_worker_full_transitions_total" in exprs and "[15m]" in exprs
    # WorkerStuckFull reads the full-seconds counter over the last hour
    assert "livekit_agents_worker_full_seconds_total" in exprs and "[1h]" in exprs
    assert longest_raw_range(rules) == 3600.0
    # ranges over recorded series (a colon in the name) are not the workers' history
    mixed = {"groups": [{"rules": [
        {"expr": "max_over_time(agent_name:livekit_agents_workers:count[6h])"},
        {"expr": 'rate(livekit_agents_job_requests_total{job="x"}[10m])'}]}]}
    assert longest_raw_range(mixed) == 600.0


def test_only_the_series_read_over_the_hour_get_the_hour_of_history() -> None:
    rules = render_rules(load_config())
    dense, long_names = history_split(rules)
    assert dense == 900.0  # every other range the rules read from workers' series
    assert long_names == {"livekit_agents_worker_full_seconds_total"}
    # pack v1 read three series over 15m, the rest over 5m
    assert history_split(yaml.safe_load(V1_RULES.read_text())) == (300.0, frozenset({
        "livekit_agents_worker_full_transitions_total", "livekit_agents_jobs_failed_total",
        "livekit_agents_jobs_finished_total"}))


def test_the_history_job_serves_its_part_of_the_timeline_first() -> None:
    families = parse_template(TEMPLATE)
    names = frozenset({"livekit_agents_worker_registered"})
    fleet = FleetServer(families, 40, start=10_000.0, steps=4, history_s=60.0, age_s=20.0,
                        history_steps=2, long_names=names)
    try:
        assert fleet.body("/metrics/0") == b""  # its history is not served yet
        first = fleet.body("/history/0")
        assert first is not None
        lines = [ln for ln in first.decode().splitlines() if ln and not ln.startswith("#")]
        # only the long-range series, labelled with the main job so they are the same series
        assert lines and all(ln.startswith('livekit_agents_worker_registered{job="livekit-agents",')
                             for ln in lines), lines
        assert fleet.body("/history/0") not in (None, b"")
        assert fleet.body("/history/0") == b""  # the history is done
        rest = fleet.body("/metrics/0")
        assert rest is not None and b"livekit_agents_load_fnc_duration_seconds_count" in rest
        assert b'job="' not in rest
    finally:
        fleet.httpd.server_close()
