"""Recording rules: per-worker capacity, then per-agent fleet figures.

Names follow ``level:metric:operations``. ``instance:`` rules keep every target label
of the worker; ``agent_name:`` rules are grouped by the aggregation labels plus
``agent_name`` (``by (cluster, agent_name)`` works whether or not ``cluster`` exists).
Rules are listed in evaluation order: later ones read earlier ones in the same group.

A worker can take a job, as the LiveKit server and the SDK decide it, when it is
registered, its last status was not WS_FULL, it is not draining, the load it reports
(``worker_load_ratio``) is below the server's ``target_load`` and its effective load is
below its own ``load_threshold``. Its usable capacity is ``min(load_threshold,
target_load)``. An effective load the exporter could not read (NaN) is unknown, not
full: such a worker is judged by its status and reported load, and left out of headroom.

Every per-worker figure is first reduced to one series per worker process (``max by``
the aggregation labels, ``worker_labels`` and ``agent_name``), so a worker scraped by two
scrape configs or seen through two Prometheus replicas is counted once.
"""

from __future__ import annotations

from typing import Any

from ..promql import RATE_WINDOW, Q, record_name
from .config import RulesConfig

# per worker
WORKER_AVAILABLE = record_name("instance", "worker_available", "bool")
WORKER_CAPACITY = record_name("instance", "worker_capacity", "ratio")
WORKER_HEADROOM = record_name("instance", "worker_headroom", "ratio")
WORKER_EFFECTIVE_UNKNOWN = record_name("instance", "worker_effective_load_unknown", "bool")
# per agent name (and aggregation labels)
WORKERS = record_name("agent_name", "workers", "count")
WORKERS_REGISTERED = record_name("agent_name", "workers_registered", "sum")
WORKERS_AVAILABLE = record_name("agent_name", "workers_available", "sum")
WORKERS_FULL = record_name("agent_name", "workers_full", "sum")
WORKER_LOAD = record_name("agent_name", "worker_load", "avg")
CAPACITY_HEADROOM = record_name("agent_name", "capacity_headroom", "ratio")
ACTIVE_JOBS = record_name("agent_name", "active_jobs", "sum")
JOB_REQUESTS_RATE = record_name("agent_name", "job_requests", f"rate{RATE_WINDOW}")
JOB_REQUESTS_REJECTED_RATE = record_name("agent_name_reason", "job_requests_rejected",
                                         f"rate{RATE_WINDOW}")
JOB_REQUESTS_REJECTED_RATIO = record_name("agent_name", "job_requests_rejected",
                                          f"ratio_rate{RATE_WINDOW}")
ASSIGNMENT_TIMEOUTS_RATE = record_name("agent_name", "assignment_timeouts", f"rate{RATE_WINDOW}")
JOBS_LAUNCHED_RATE = record_name("agent_name", "jobs_launched", f"rate{RATE_WINDOW}")
JOBS_FINISHED_RATE = record_name("agent_name", "jobs_finished", f"rate{RATE_WINDOW}")
JOBS_FAILED_RATE = record_name("agent_name_reason", "jobs_failed", f"rate{RATE_WINDOW}")
DISPATCH_LATENCY_BUCKETS_RATE = record_name("agent_name", "job_dispatch_latency_seconds_bucket",
                                            f"rate{RATE_WINDOW}")
DISPATCH_LATENCY_COUNT_RATE = record_name("agent_name", "job_dispatch_latency_seconds_count",
                                          f"rate{RATE_WINDOW}")
DISPATCH_LATENCY_QUANTILE = record_name("agent_name", "job_dispatch_latency_seconds",
                                        "histogram_quantile")
DISPATCH_QUANTILES = (0.5, 0.9, 0.99)

# Three groups, evaluated concurrently, so that each fits well inside the evaluation
# interval at 10,000 workers (benchmarks/): the capacity chain (per worker, then per agent),
# the counter rates, and the dispatch-latency histogram (its bucket rates are the costliest
# rule of the pack). No rule of one reads a rule of another.
GROUP_NAME = "livekit-agents.rules"
RATES_GROUP_NAME = "livekit-agents.rates.rules"
LATENCY_GROUP_NAME = "livekit-agents.latency.rules"


def _rule(record: str, expr: str, **labels: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"record": record, "expr": expr.strip("\n")}
    if labels:
        rule["labels"] = labels
    return rule


def _rate_sum(q: Q, short: str, *extra: str, suffix: str = "") -> str:
    rate = f"rate({q.raw(short, suffix)}[{RATE_WINDOW}])"
    return q.fleet_sum(rate, *extra)


def recording_rules(config: RulesConfig) -> list[dict[str, Any]]:
    """Every recording rule of the three groups, in evaluation order."""
    return capacity_rules(config) + rate_rules(config) + latency_rules(config)


def capacity_rules(config: RulesConfig) -> list[dict[str, Any]]:
    """Per-worker capacity, then the per-agent worker counts and headroom."""
    q = Q(config)
    w = q.worker()
    registered, effective, load = w.registered, w.effective, w.load
    rules = [
        _rule(WORKER_AVAILABLE, q.dedup(f"\n{w.available}\n")),
        _rule(WORKER_EFFECTIVE_UNKNOWN, q.dedup(w.effective_unknown)),
        _rule(WORKER_CAPACITY, q.dedup(f"\n{w.capacity}\n")),
        # max(0, capacity - effective load)
        _rule(WORKER_HEADROOM, f"""
({WORKER_CAPACITY} - {q.dedup(effective)}) >= 0
  or
{WORKER_CAPACITY} * 0
"""),
        _rule(WORKERS, f"count {q.by()} ({q.dedup(registered)})"),
        _rule(WORKERS_REGISTERED, f"sum {q.by()} ({q.dedup(registered)})"),
        _rule(WORKERS_AVAILABLE, f"sum {q.by()} ({WORKER_AVAILABLE})"),
        _rule(WORKERS_FULL, f"sum {q.by()} ({q.dedup(w.full_registered)})"),
        _rule(WORKER_LOAD, f"avg {q.by()} ({q.dedup(f'{load} > -Inf')})"),
        # 0 when workers exist but none counts (all draining or unregistered); absent when
        # that is because the effective load of some cannot be read (unknown, not full)
        _rule(CAPACITY_HEADROOM, f"""
sum {q.by()} ({WORKER_HEADROOM})
  /
(sum {q.by()} ({WORKER_CAPACITY}) > 0)
  or
(
  {WORKERS} * 0
    unless on ({", ".join(q.agent_labels)})
  (sum {q.by()} ({WORKER_EFFECTIVE_UNKNOWN}) > 0)
)
"""),
        _rule(ACTIVE_JOBS, f"sum {q.by()} ({q.dedup(q.raw('worker_active_jobs'))})"),
    ]
    return rules


def rate_rules(config: RulesConfig) -> list[dict[str, Any]]:
    """Per-agent counter rates and refusal ratio."""
    q = Q(config)
    rules = [
        _rule(JOB_REQUESTS_RATE, _rate_sum(q, "job_requests")),
        _rule(JOB_REQUESTS_REJECTED_RATE, _rate_sum(q, "job_requests_rejected", "reason")),
        _rule(JOB_REQUESTS_REJECTED_RATIO, f"""
sum {q.by()} ({JOB_REQUESTS_REJECTED_RATE})
  /
({JOB_REQUESTS_RATE} > 0)
"""),
        _rule(ASSIGNMENT_TIMEOUTS_RATE, _rate_sum(q, "assignment_timeouts")),
        _rule(JOBS_LAUNCHED_RATE, _rate_sum(q, "jobs_launched")),
        _rule(JOBS_FINISHED_RATE, _rate_sum(q, "jobs_finished")),
        _rule(JOBS_FAILED_RATE, _rate_sum(q, "jobs_failed", "reason")),
    ]
    return rules


def latency_rules(config: RulesConfig) -> list[dict[str, Any]]:
    """Per-agent dispatch-latency bucket rates, then the quantiles that read them."""
    q = Q(config)
    rules: list[dict[str, Any]] = []
    # The per-agent bucket rates are recorded once and the quantiles read them: computing
    # them inside each quantile rule summed every worker's buckets three times, the bulk
    # of the group's evaluation time at 10,000 workers (benchmarks/).
    rules += [
        _rule(DISPATCH_LATENCY_BUCKETS_RATE,
              _rate_sum(q, "job_dispatch_latency_seconds", "le", suffix="_bucket")),
        _rule(DISPATCH_LATENCY_COUNT_RATE,
              _rate_sum(q, "job_dispatch_latency_seconds", suffix="_count")),
    ]
    for quantile in DISPATCH_QUANTILES:
        # only where jobs were dispatched in the window: no NaN series
        rules.append(_rule(DISPATCH_LATENCY_QUANTILE, f"""
histogram_quantile({quantile}, {DISPATCH_LATENCY_BUCKETS_RATE})
  and
{DISPATCH_LATENCY_COUNT_RATE} > 0
""", quantile=str(quantile)))
    return rules
