"""The dashboard's rows, top to bottom, each answering one operator question.

Queries read the exporter's raw series (never the alert pack's recording rules), so the
dashboard works without the rules loaded; the capacity definitions match the rules'. Every
worker query keeps one series per worker process first (``Selector.one_per_worker``,
``fleet_sum``, ``sum_rate``, ``quantile``), as the rules do, so a worker read by two scrape
configs or two Prometheus replicas is neither doubled nor drawn twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dash_m

from .. import metrics
from ..rules.dispatch_slo_config import SERVER_LOG_SECTION
from .panels import (
    Query,
    Step,
    bargauge_panel,
    heatmap_panel,
    stat_panel,
    state_panel,
    table_panel,
    timeseries_panel,
)
from .queries import RANGE, TARGET_LOAD, Selector

Panel = cogbuilder.Builder[dash_m.Panel]

QUANTILES = ((0.5, "p50"), (0.9, "p90"), (0.99, "p99"))
# The server gives a worker about 3 s (the RPC deadline) to answer an offer.
ANSWER_DEADLINE_S = 3.0
# Headroom colours: red when (nearly) nothing is left.
HEADROOM_STEPS = (Step("red"), Step("orange", 0.1), Step("green", 0.25))
LOAD_STEPS = (Step("green"), Step("orange", 0.8), Step("red", 1.0))


def nl(expr: str) -> str:
    """A multi-line expression on lines of its own inside the parentheses around it."""
    return f"\n{expr}\n"


def _s(short: str) -> str:
    """Query name of a metric, for descriptions."""
    return f"`{metrics.series(short)}`"


@dataclass(frozen=True)
class Row:
    title: str
    question: str  # what the row answers (README, row description in tests)
    panels: list[Panel]


def capacity_row(sel: Selector) -> Row:
    cap = sel.capacity()
    return Row("Fleet capacity at a glance",
               "Can my fleet take the next call, and how close is it to full?", [
        stat_panel(
            "Workers registered",
            f"Worker processes holding a registered connection to the LiveKit server "
            f"(sum of {_s('worker_registered')}).",
            "none", Query(f"sum({sel.one_per_worker(cap.registered)})"),
            steps=(Step("red"), Step("green", 1))),
        stat_panel(
            "Workers able to take a job",
            "Registered workers the server can place a job on now: last status not WS_FULL, "
            "not draining, reported load below the server's target_load ($target_load) and "
            "effective load below their own load_threshold. 0 means the next call finds no "
            "worker and is lost.",
            "none", Query(f"sum(\n{sel.one_per_worker(nl(cap.available))}\n)"),
            steps=(Step("red"), Step("orange", 1), Step("green", 2))),
        stat_panel(
            "Workers full",
            f"Registered workers whose last status sent to the server was WS_FULL, full or "
            f"draining ({_s('worker_full')}).",
            "none", Query(f"sum({sel.one_per_worker(cap.full_registered)})"),
            steps=(Step("green"), Step("orange", 1))),
        stat_panel(
            "Headroom vs worker threshold",
            "Share of the fleet's load_threshold still unused: sum over workers not reporting "
            "full of max(0, load_threshold - effective load), divided by the sum of "
            "load_threshold (an infinite dev-mode threshold counts as 1). Draining and "
            "unregistered workers are left out.",
            "percentunit", Query(cap.headroom_ratio("threshold", None, sel.one_per_worker)),
            steps=HEADROOM_STEPS, decimals=0),
        stat_panel(
            "Headroom vs server target load",
            "Share of the server's target_load ($target_load) still unused: sum over "
            "WS_AVAILABLE workers of max(0, target_load - reported load), the server's bid, "
            "divided by target_load times the workers that count. A worker whose "
            "load_threshold is above target_load can look available here yet win no job.",
            "percentunit", Query(cap.headroom_ratio("target", None, sel.one_per_worker)),
            steps=HEADROOM_STEPS, decimals=0),
        stat_panel(
            "Active jobs",
            f"Jobs running on the selected workers now (sum of {_s('worker_active_jobs')}).",
            "none", Query(f"sum({sel.one_per_worker(sel.raw('worker_active_jobs'))})")),
        timeseries_panel(
            "Workers by state",
            "Per agent: workers registered, able to take a job (same definition as the stat "
            "above) and full. A falling 'able' line with a flat 'registered' line is "
            "saturation coming; 'able' at 0 loses calls.",
            "none", [
                Query(f"sum by ({sel.fleet}) ({sel.one_per_worker(cap.registered)})",
                      f"registered {sel.fleet_legend}"),
                Query(f"sum by ({sel.fleet}) (\n{sel.one_per_worker(nl(cap.available))}\n)",
                      f"able {sel.fleet_legend}"),
                Query(f"sum by ({sel.fleet}) ({sel.one_per_worker(cap.full_registered)})",
                      f"full {sel.fleet_legend}"),
            ]),
        timeseries_panel(
            "Capacity headroom per agent",
            "Per agent, the two headrooms of the stats above over time: against the workers' "
            "load_threshold and against the server's target_load. The lower one is the "
            "capacity left; scale out before it reaches 0.",
            "percentunit", [
                Query(cap.headroom_ratio("threshold", sel.fleet, sel.one_per_worker),
                      f"vs threshold {sel.fleet_legend}"),
                Query(cap.headroom_ratio("target", sel.fleet, sel.one_per_worker),
                      f"vs target load {sel.fleet_legend}"),
            ], max_val=1, steps=(Step("red"), Step("orange", 0.1), Step("transparent", 0.25))),
    ])


def load_row(sel: Selector) -> Row:
    cap = sel.capacity()
    threshold = f"clamp_max({cap.threshold} >= 0, 1)"
    return Row("Load per worker",
               "Which workers are saturated, and since when?", [
        timeseries_panel(
            "Effective load vs load_threshold",
            f"Per worker, the load the SDK compares with its threshold "
            f"({_s('worker_effective_load_ratio')}: load plus reserved slots on 1.8) and, "
            f"dashed, the agent's load_threshold ({_s('worker_load_threshold_ratio')}, "
            f"dev mode's +Inf shown as 1). At or above the line the worker refuses jobs.",
            "percentunit", [
                Query(sel.one_per_worker(cap.effective), sel.worker_legend),
                Query(f"max by ({sel.fleet}) ({threshold})", f"threshold {sel.fleet_legend}"),
            ], dashed="^threshold .*"),
        timeseries_panel(
            "Reported load vs server target_load",
            f"Per worker, the load_fnc value sent to the server ({_s('worker_load_ratio')}) "
            f"and, dashed, the server's target_load ($target_load). At or above it the "
            f"server offers the worker no job even while it reports itself available.",
            "percentunit", [
                Query(sel.one_per_worker(cap.load), sel.worker_legend),
                Query(f"vector({TARGET_LOAD})", "server target_load"),
            ], dashed="^server target_load$"),
        bargauge_panel(
            "Workers closest to full",
            "Effective load divided by load_threshold per worker, now: 100% means the worker "
            "refuses jobs. Largest first.",
            "percentunit",
            Query(f"sort_desc({sel.one_per_worker(f'{cap.effective} / {threshold}')})",
                  sel.worker_legend),
            steps=LOAD_STEPS, max_val=1.2),
        state_panel(
            "Full and draining workers",
            f"Per worker over time: available, full ({_s('worker_full')}) or draining "
            f"({_s('worker_draining')}, reported to the server as full). Shows which workers "
            f"were saturated and since when.",
            "none",
            Query(sel.one_per_worker(f"{cap.full} + {cap.draining}"), sel.worker_legend),
            states=(("0", "available", "green"), ("1", "full", "red"),
                    ("2", "draining", "blue"))),
        heatmap_panel(
            "Load samples",
            f"Every load_fnc sample ({metrics.BY_SHORT['worker_load_samples_ratio'].name}, taken "
            f"every 0.5 s and before each offer), so spikes between scrapes are kept. Cells: "
            f"samples per second in each load bucket, all selected workers together.",
            "percentunit", "cps",
            Query(sel.fleet_sum(sel.rate("worker_load_samples_ratio", "_bucket"), "le", per="all"),
                  "{{le}}"),
            w=24),
    ])


def jobs_row(sel: Selector) -> Row:
    return Row("Active jobs", "How much work is running, and where?", [
        timeseries_panel(
            "Active jobs per agent",
            f"Jobs running, summed per agent ({_s('worker_active_jobs')}).",
            "none",
            [Query(f"sum by ({sel.fleet}) ({sel.one_per_worker(sel.raw('worker_active_jobs'))})",
                   sel.fleet_legend)],
            stacked=True),
        timeseries_panel(
            "Jobs per worker",
            f"Per worker: jobs running ({_s('worker_active_jobs')}) and, dashed, job requests "
            f"accepted but not yet assigned by the server "
            f"({_s('worker_pending_assignments')}); on 1.8 those count in the effective load.",
            "none", [
                Query(sel.one_per_worker(sel.raw("worker_active_jobs")),
                      f"running {sel.worker_legend}"),
                Query(sel.one_per_worker(sel.raw("worker_pending_assignments")),
                      f"awaiting assignment {sel.worker_legend}"),
            ], dashed="^awaiting assignment .*"),
    ])


def requests_row(sel: Selector) -> Row:
    requests, rejected = sel.sum_rate("job_requests"), sel.sum_rate("job_requests_rejected")
    return Row("Job requests and refusals",
               "Are jobs being refused or lost, and why?", [
        stat_panel(
            "Offers refused in range",
            f"Job offers answered available=false over the dashboard's time range "
            f"({_s('job_requests_rejected')}). The server tries another worker on the same "
            f"node; when none is left the call is lost.",
            "none", Query(sel.sum_increase("job_requests_rejected")),
            steps=(Step("green"), Step("orange", 1)), w=6),
        stat_panel(
            "Assignment timeouts in range",
            f"Accepted jobs whose assignment never arrived in time, over the dashboard's time "
            f"range ({_s('assignment_timeouts')}): those jobs are lost.",
            "none", Query(sel.sum_increase("assignment_timeouts")),
            steps=(Step("green"), Step("red", 1)), w=6),
        stat_panel(
            "Refused share of offers",
            "Refused offers divided by offers received, over the dashboard's time range.",
            "percentunit",
            Query(f"{sel.sum_increase('job_requests_rejected')}\n/\n"
                  f"({sel.sum_increase('job_requests')} > 0)"),
            steps=(Step("green"), Step("orange", 0.05), Step("red", 0.25)), w=6),
        stat_panel(
            "Offers received in range",
            f"Job offers (AvailabilityRequest) received from the server over the dashboard's "
            f"time range ({_s('job_requests')}).",
            "none", Query(sel.sum_increase("job_requests")), w=6),
        timeseries_panel(
            "Job offers",
            f"Offers received from the server ({_s('job_requests')}) and accepted "
            f"({_s('job_requests_accepted')}), per agent.",
            "reqps", [
                Query(requests, f"offered {sel.fleet_legend}"),
                Query(sel.sum_rate("job_requests_accepted"), f"accepted {sel.fleet_legend}"),
            ]),
        timeseries_panel(
            "Refused offers by reason",
            f"Offers answered available=false ({_s('job_requests_rejected')}) by reason: "
            f"full, draining, on_request (the request handler rejected), unanswered (it "
            f"returned without answering), error (it raised).",
            "reqps",
            [Query(sel.sum_rate("job_requests_rejected", "reason"),
                   "{{reason}} " + sel.fleet_legend)],
            stacked=True, bars=True),
        timeseries_panel(
            "Refused share of offers per agent",
            "Refused offers divided by offers received, per agent.",
            "percentunit", [Query(f"{rejected}\n/\n({requests} > 0)", sel.fleet_legend)],
            max_val=1),
        timeseries_panel(
            "Assignment timeouts and late assignments",
            f"Accepted jobs whose JobAssignment did not arrive within 7.5 s "
            f"({_s('assignment_timeouts')}, the job is lost) and assignments that arrived "
            f"for a job the worker no longer waited for ({_s('job_assignments_unknown')}).",
            "reqps", [
                Query(sel.sum_rate("assignment_timeouts"), f"timed out {sel.fleet_legend}"),
                Query(sel.sum_rate("job_assignments_unknown"), f"arrived late {sel.fleet_legend}"),
            ]),
    ])


def latency_row(sel: Selector) -> Row:
    return Row("Dispatch latency", "How long does a call wait for its agent?", [
        timeseries_panel(
            "Dispatch latency (offer to launch)",
            f"Percentiles of the time from the job offer arriving to the job being launched "
            f"({metrics.BY_SHORT['job_dispatch_latency_seconds'].name}), per agent.",
            "s", [Query(sel.quantile(q, "job_dispatch_latency_seconds"),
                        f"{name} {sel.fleet_legend}") for q, name in QUANTILES]),
        timeseries_panel(
            "Answer latency (offer to answer)",
            f"Percentiles of the time from the job offer arriving to the answer being sent "
            f"({metrics.BY_SHORT['job_request_answer_duration_seconds'].name}). The server waits "
            f"about {ANSWER_DEADLINE_S:g} s (dashed line): slower answers lose the job.",
            "s", [Query(sel.quantile(q, "job_request_answer_duration_seconds"),
                        f"{name} {sel.fleet_legend}") for q, name in QUANTILES],
            steps=(Step("transparent"), Step("red", ANSWER_DEADLINE_S))),
    ])


def outcome_row(sel: Selector) -> Row:
    failed = sel.sum_rate("jobs_failed")
    return Row("Job duration and failures", "How long do jobs run, and do they fail?", [
        timeseries_panel(
            "Job duration",
            f"Percentiles of the time from job launch to job end "
            f"({metrics.BY_SHORT['job_duration_seconds'].name}), per agent.",
            "s", [Query(sel.quantile(q, "job_duration_seconds"), f"{name} {sel.fleet_legend}")
                  for q, name in QUANTILES], w=6),
        timeseries_panel(
            "Jobs launched and finished",
            f"Jobs handed to a job process or thread ({_s('jobs_launched')}) and jobs that "
            f"ended, whatever the outcome ({_s('jobs_finished')}).",
            "ops", [
                Query(sel.sum_rate("jobs_launched"), f"launched {sel.fleet_legend}"),
                Query(sel.sum_rate("jobs_finished"), f"finished {sel.fleet_legend}"),
            ], w=6),
        timeseries_panel(
            "Job failures by reason",
            f"Jobs that ended badly ({_s('jobs_failed')}): entrypoint_error (the entrypoint "
            f"raised) or process_exit (the job process exited non-zero or was killed).",
            "ops", [Query(sel.sum_rate("jobs_failed", "reason"),
                          "{{reason}} " + sel.fleet_legend)], w=6, stacked=True, bars=True),
        timeseries_panel(
            "Failed share of finished jobs",
            "Failed jobs divided by jobs that ended, per agent. Note that an entrypoint that "
            "raises is still reported to the server as a success: only this exporter sees it.",
            "percentunit", [Query(f"{failed}\n/\n({sel.sum_rate('jobs_finished')} > 0)",
                                  sel.fleet_legend)], w=6, max_val=1),
    ])


def full_time_row(sel: Selector) -> Row:
    return Row("Time spent full", "How long were workers full, and do they flap?", [
        timeseries_panel(
            "Share of time reported full",
            f"Per worker, the fraction of time its status was WS_FULL "
            f"({_s('worker_full_seconds')} per second).",
            "percentunit", [Query(sel.one_per_worker(sel.rate("worker_full_seconds")),
                                   sel.worker_legend)],
            w=8, max_val=1),
        timeseries_panel(
            "Full transitions per minute",
            f"Per worker, status changes to WS_FULL ({_s('worker_full_transitions')}). A "
            f"worker that flips often hovers at its threshold: scale out or raise it.",
            "opm", [Query(f"{sel.one_per_worker(sel.rate('worker_full_transitions'))} * 60",
                          sel.worker_legend)], w=8),
        bargauge_panel(
            "Time full in range",
            f"Seconds each worker reported WS_FULL over the dashboard's time range "
            f"({_s('worker_full_seconds')}). Largest first.",
            "s", Query(f"sort_desc("
                       f"{sel.one_per_worker(sel.increase('worker_full_seconds', RANGE))})",
                       sel.worker_legend),
            steps=(Step("green"), Step("orange", 60), Step("red", 600)), w=8),
    ])


def memory_row(sel: Selector) -> Row:
    return Row("Job process memory", "Are job processes close to their memory limit?", [
        timeseries_panel(
            "Job process memory per worker",
            f"Resident memory summed over each worker's job processes "
            f"({_s('job_processes_resident_memory_bytes')}, process executor only).",
            "bytes", [Query(sel.one_per_worker(sel.raw("job_processes_resident_memory_bytes")),
                           sel.worker_legend)],
            w=8),
        timeseries_panel(
            "Largest job process vs memory limit",
            f"Resident memory of each worker's largest job process "
            f"({_s('job_process_max_resident_memory_bytes')}) and, dashed, the configured "
            f"job_memory_limit_mb ({_s('job_memory_limit_bytes')}, shown when set): the SDK "
            f"kills a job process above it.",
            "bytes", [
                Query(sel.one_per_worker(sel.raw("job_process_max_resident_memory_bytes")),
                      sel.worker_legend),
                Query(f"{sel.one_per_worker(sel.raw('job_memory_limit_bytes'))} > 0",
                      f"limit {sel.worker_legend}"),
            ], w=8, dashed="^limit .*"),
        timeseries_panel(
            "Job processes alive",
            f"Job executor processes alive per worker ({_s('job_processes')}, process "
            f"executor only), idle pre-started ones included.",
            "none", [Query(sel.one_per_worker(sel.raw("job_processes")), sel.worker_legend)], w=8),
    ])


def health_row(sel: Selector) -> Row:
    return Row("Worker and exporter health", "Can the load and full figures above be trusted?", [
        timeseries_panel(
            "Reconnections per minute",
            f"Registrations with the server after the first one ({_s('worker_registrations')}). "
            f"While a worker reconnects its status updates are dropped and the server cannot "
            f"place jobs on it.",
            "opm", [Query(f"{sel.one_per_worker(sel.rate('worker_registrations'))} * 60",
                          sel.worker_legend)], w=6),
        timeseries_panel(
            "load_fnc errors",
            f"load_fnc calls that raised or returned a bad value ({_s('load_fnc_errors')}) by "
            f"kind: exception, non_numeric, nan, out_of_range. The load then shown is wrong.",
            "ops", [Query(sel.sum_rate("load_fnc_errors", "error", per="worker"),
                          "{{error}} " + sel.worker_legend)], w=6, stacked=True, bars=True),
        timeseries_panel(
            "load_fnc duration",
            f"99th percentile of one load_fnc call "
            f"({metrics.BY_SHORT['load_fnc_duration_seconds'].name}), per agent. On 1.8 it runs "
            f"before every offer is answered, so a slow one delays answers.",
            "s", [Query(sel.quantile(0.99, "load_fnc_duration_seconds"),
                        f"p99 {sel.fleet_legend}")],
            w=6),
        timeseries_panel(
            "Exporter errors",
            f"Failures inside the exporter, caught and logged instead of reaching the worker "
            f"({_s('exporter_errors')}), by component. Non-zero means some figures above may "
            f"be missing updates. The series of a component appear with its first error, so "
            f"workers without any show 0 as component 'none'.",
            "ops", [Query(f"{sel.sum_rate('exporter_errors', 'component', per='worker')}\n"
                          f"  or on ({sel.worker})\n"
                          f"label_replace({sel.one_per_worker(sel.raw('worker_registered'))}"
                          f" * 0, "
                          f'"component", "none", "", "")',
                          "{{component}} " + sel.worker_legend)], w=6, stacked=True, bars=True),
    ])


def alerts_row(sel: Selector) -> Row:
    return Row("Alerts", "What is the alert pack paging about, and since when?", [
        stat_panel(
            "Firing alerts",
            "Alerts of the livekit-agents alert pack (LiveKitAgents*) firing now for the "
            "selected cluster and agents.",
            "none", Query(f"count({sel.alerts(state='firing')})"),
            steps=(Step("green"), Step("red", 1)), no_value="0", w=4, h=8),
        state_panel(
            "Alert states over time",
            "Each alert of the pack over time: pending (condition true, waiting for its "
            "for: duration) or firing.",
            "none",
            Query(f"max by (alertname, severity, {sel.fleet}) (\n"
                  f"  {sel.alerts(state='firing')} * 2\n  or\n  {sel.alerts(state='pending')}\n)",
                  "{{alertname}} {{agent_name}}"),
            states=(("1", "pending", "orange"), ("2", "firing", "red")), w=10),
        table_panel(
            "Active alerts since",
            "Alerts of the pack that are pending or firing now, with the time their "
            "condition became true (ALERTS_FOR_STATE).",
            "dateTimeFromNow",
            Query(f"{sel.alerts('ALERTS_FOR_STATE')} * 1000"),
            w=10, h=8),
    ])


NO_SERVER_LOG = "no server log"
# the server-log rules' default objective, for the burn thresholds drawn on the ratio
# (the key always has a default; mypy sees the optional of the general Option type)
_BUDGET = 1 - float(SERVER_LOG_SECTION.keys["slo_objective"].default)  # type: ignore[union-attr]


def server_log_row(sel: Selector) -> Row:
    """From livekit-server's log, as the mtail program counts it (server-log/README.md)."""
    lost, all_ = sel.sum_increase("server_dispatches_lost"), sel.sum_increase("server_dispatches")
    return Row("Lost dispatches, from livekit-server's log",
               "Which calls got no agent at all, why, and how fast is the SLO budget burning?", [
        stat_panel(
            "Dispatches lost in range (server log)",
            f"Dispatches livekit-server logged as getting no agent, over the dashboard's time "
            f"range ({_s('server_dispatches_lost')}, counted by the mtail program in "
            f"server-log/ from the server's own log). '{NO_SERVER_LOG}': that pipeline is not "
            f"set up, the worker-side panels are all there is.",
            "none", Query(lost), steps=(Step("green"), Step("red", 1)),
            no_value=NO_SERVER_LOG, w=6),
        stat_panel(
            "Dispatch success in range (server log)",
            f"Share of the dispatches livekit-server logged that were assigned to a worker "
            f"({_s('server_dispatches_assigned')} over {_s('server_dispatches')}): the "
            f"dispatch SLO's indicator.",
            "percentunit",
            Query(f"{sel.sum_increase('server_dispatches_assigned')}\n/\n({all_} > 0)"),
            steps=(Step("red"), Step("orange", 0.99), Step("green", 1 - _BUDGET)),
            no_value=NO_SERVER_LOG, decimals=2, w=6),
        timeseries_panel(
            "Lost dispatches by cause (server log)",
            "Per agent and cause: no_worker_registered, no_capacity (every node's workers "
            "full or at target_load), all_refused (the chosen node's workers all refused), "
            "availability_timeout, deadline_exceeded, other.",
            "reqps",
            [Query(sel.sum_rate("server_dispatches_lost", "cause"),
                   "{{cause}} " + sel.fleet_legend)],
            stacked=True, bars=True),
        timeseries_panel(
            "Lost share of dispatches, SLO burn (server log)",
            f"Lost over logged dispatches per agent. The lines mark the alert pack's burn "
            f"thresholds for a {1 - _BUDGET:.1%} objective: 6x the error budget "
            f"({6 * _BUDGET:.2%}, the 6h page) and 14.4x ({14.4 * _BUDGET:.2%}, the 1h page).",
            "percentunit",
            [Query(f"{sel.sum_rate('server_dispatches_lost')}\n/\n"
                   f"({sel.sum_rate('server_dispatches')} > 0)", sel.fleet_legend)],
            steps=(Step("transparent"), Step("orange", round(6 * _BUDGET, 6)),
                   Step("red", round(14.4 * _BUDGET, 6)))),
    ])


ROWS: tuple[Callable[[Selector], Row], ...] = (
    capacity_row, server_log_row, load_row, jobs_row, requests_row, latency_row, outcome_row,
    full_time_row, memory_row, health_row, alerts_row,
)
