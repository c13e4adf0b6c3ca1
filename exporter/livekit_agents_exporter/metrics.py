"""The metric catalogue: the one place a metric is defined.

The exporter creates its collectors from this list, the README's metric table is
rendered from it, and the alert rules and dashboard import the names from here, so
adding a metric means adding one ``MetricSpec`` below (then ``make``-style
regeneration: ``livekit-agents-exporter metrics``).

Naming follows the Prometheus guides: ``livekit_agents_`` prefix, base units,
``_total`` counters, ``_seconds``, ``_bytes``, ``_ratio`` for 0..1 values. Every
series carries ``agent_name``; target labels (pod, namespace, cluster) are left to
Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PREFIX = "livekit_agents_"
AGENT_LABEL = "agent_name"

Kind = Literal["gauge", "counter", "histogram", "info"]
# Where a metric comes from: the exporter in the worker, or livekit-server's log read by the
# mtail program in ``server-log/`` (the exporter never registers those).
Source = Literal["worker", "server_log"]

# Refusal reasons for ``job_requests_rejected_total``: a small fixed set so that the
# label can never grow with user input.
REJECT_REASONS = ("full", "draining", "on_request", "unanswered", "error")
LOAD_FNC_ERRORS = ("exception", "non_numeric", "nan", "out_of_range")
JOB_FAILURE_REASONS = ("entrypoint_error", "process_exit")
# Job executor failures the SDK only logs: a process that failed to start or initialise, an
# assigned job that got no process, a process that could not take the job it was handed.
JOB_PROCESS_FAILURE_REASONS = ("initialize", "acquire", "launch")
# The exporter's hooks into the worker, each attached (or switched off) on its own.
# (hooks.OBSERVES says what each one observes)
EXPORTER_HOOKS = ("worker_run", "load_fnc", "request_fnc", "entrypoint", "register",
                  "availability", "assignment", "outgoing", "connection", "job_failures",
                  "process_failures")
# Where an exporter-internal failure was caught; fixed so the series exist from the start.
EXPORTER_COMPONENTS = ("load_fnc", "request_fnc", "assignment_timeout", "job_events", "wire",
                       "connection", "gauge", "collector", "scrape", "http_server",
                       "http_handler", "hooks", "web_config", "other")

MAX_OBSERVED_LOAD = 100.0  # a larger sample would own the load histogram's _sum for good
LOAD_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21)) + (1.25, 1.5, 2.0)
DISPATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
ANSWER_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10)
JOB_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
LOAD_FNC_DURATION_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5)


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric: name without the ``_total`` suffix for counters."""

    short: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    unit_note: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    source: Source = "worker"
    per_agent: bool = True  # False: no agent_name label (facts about the log pipeline)

    @property
    def name(self) -> str:
        """The family name as it appears in the exposition (without suffixes)."""
        return PREFIX + self.short

    @property
    def series_name(self) -> str:
        """The sample name queries use (``_total`` for counters, ``_info`` for info)."""
        if self.kind == "counter":
            return self.name + "_total"
        if self.kind == "info":
            return self.name + "_info"
        return self.name

    @property
    def all_labels(self) -> tuple[str, ...]:
        return (AGENT_LABEL, *self.labels) if self.per_agent else self.labels


def _spec(*args: object, **kwargs: object) -> MetricSpec:
    return MetricSpec(*args, **kwargs)  # type: ignore[arg-type]  # rows checked by the tests


CATALOGUE: tuple[MetricSpec, ...] = (
    # --- state the worker reports to the server ---------------------------------
    _spec("worker_load_ratio", "gauge",
          "Last value returned by the worker's load_fnc (0..1; exported as returned)."),
    _spec("worker_load_threshold_ratio", "gauge",
          "Configured load_threshold: the worker refuses jobs at or above it (+Inf in dev mode)."),
    _spec("worker_effective_load_ratio", "gauge",
          "Load the SDK compares with the threshold: load plus reserved slots times the per-job "
          "estimate (livekit-agents 1.4.5 and later), the plain load before."),
    _spec("worker_full", "gauge",
          "1 when the last status sent to the server was WS_FULL (full or draining), else 0."),
    _spec("worker_draining", "gauge", "1 while the worker is draining, else 0."),
    _spec("worker_registered", "gauge",
          "1 while the worker holds a registered connection to the LiveKit server, else 0."),
    _spec("worker_active_jobs", "gauge", "Jobs currently running on the worker."),
    _spec("worker_pending_assignments", "gauge",
          "Job requests accepted but not yet assigned by the server."),
    _spec("worker", "info",
          "Static facts about the instrumented worker.",
          labels=("worker_type", "sdk_version", "exporter_version")),
    _spec("job_processes", "gauge", "Job executor processes alive (process executor only)."),
    _spec("job_processes_resident_memory_bytes", "gauge",
          "Resident memory summed over the job processes (process executor only)."),
    _spec("job_process_max_resident_memory_bytes", "gauge",
          "Resident memory of the largest job process (process executor only)."),
    _spec("job_memory_limit_bytes", "gauge",
          "Configured job_memory_limit_mb in bytes; 0 means no limit."),
    _spec("worker_cloud_load_defaults", "gauge",
          "1 when the worker runs on LiveKit Cloud, where the SDK replaces a custom load_fnc "
          "and load_threshold with its own defaults, else 0."),
    # --- what crossed the wire ----------------------------------------------------
    _spec("job_requests", "counter", "Job offers (AvailabilityRequest) received from the server."),
    _spec("job_requests_accepted", "counter", "Job offers answered available=true."),
    _spec("job_requests_rejected", "counter",
          "Job offers answered available=false, by reason: full, draining, on_request "
          "(rejected by the request handler), unanswered (handler returned without answering), "
          "error (handler raised before answering).",
          labels=("reason",)),
    _spec("assignment_timeouts", "counter",
          "Accepted jobs whose JobAssignment never arrived in time (AssignmentTimeoutError)."),
    _spec("job_assignments", "counter", "JobAssignment messages received for an accepted job."),
    _spec("job_assignments_unknown", "counter",
          "JobAssignment messages for a job the worker no longer waits for (arrived too late)."),
    _spec("jobs_launched", "counter", "Jobs handed to a job process or thread."),
    _spec("jobs_finished", "counter", "Jobs that ended, whatever the outcome."),
    _spec("jobs_failed", "counter",
          "Jobs that ended badly: entrypoint_error (the entrypoint raised) or process_exit "
          "(the job process exited non-zero or was killed).",
          labels=("reason",)),
    _spec("job_process_failures", "counter",
          "Job executor failures the SDK only logs, by reason: initialize (a job process failed "
          "to start or initialise), acquire (an assigned job got no process), launch (a process "
          "could not take the job it was handed).",
          labels=("reason",)),
    _spec("worker_full_transitions", "counter", "Transitions of the reported status to WS_FULL."),
    _spec("worker_full_seconds", "counter", "Seconds the worker reported itself WS_FULL."),
    _spec("worker_registrations", "counter",
          "Successful registrations with the server (the first one and every reconnect)."),
    _spec("load_fnc_errors", "counter",
          "load_fnc calls that raised or returned a bad value: exception, non_numeric, nan, "
          "out_of_range (below 0 or above 1).",
          labels=("error",)),
    _spec("exporter_errors", "counter",
          "Failures inside the exporter itself, caught and logged instead of reaching the worker, "
          "by component: load_fnc, request_fnc, assignment_timeout, job_events, wire, connection, "
          "gauge, collector, scrape, http_server, http_handler, hooks (a hook that could not "
          "attach), web_config (a changed web config that does not load: the last good one "
          "stays), other.",
          labels=("component",)),
    _spec("exporter_hooks_attached", "gauge",
          "1 while the exporter's hook into the worker is attached, 0 when it is not (the worker "
          "has not run yet, its run() was not hooked, the SDK internal it needs has moved, or, "
          "for load_fnc, LiveKit Cloud replaces it): a 0 means that part of the worker is not "
          "observed.",
          labels=("hook",)),
    # --- distributions ------------------------------------------------------------
    _spec("worker_load_samples_ratio", "histogram",
          "Every load_fnc sample (every 0.5 s and before each offer), so spikes between scrapes "
          "are kept; samples beyond +-100, absurd for a load, are only counted as load_fnc "
          "errors.", buckets=LOAD_BUCKETS),
    _spec("job_dispatch_latency_seconds", "histogram",
          "Time from the job offer arriving to the job being launched.",
          buckets=DISPATCH_BUCKETS),
    _spec("job_request_answer_duration_seconds", "histogram",
          "Time from the job offer arriving to the answer being sent (slow answers lose jobs).",
          buckets=ANSWER_BUCKETS),
    _spec("job_duration_seconds", "histogram", "Time from job launch to job end.",
          buckets=JOB_DURATION_BUCKETS),
    _spec("load_fnc_duration_seconds", "histogram", "Wall time of one load_fnc call.",
          buckets=LOAD_FNC_DURATION_BUCKETS),
)

# --- from livekit-server's log ------------------------------------------------------
# Counted by ``server-log/livekit-server.mtail`` from the lines livekit-server writes for each
# dispatch (see server-log/README.md for every line, cited to the server's source). Lost
# dispatches are counted once, from the room side's line; the causes follow the error text.
SERVER_LOSS_CAUSES = ("no_worker_registered", "no_capacity", "all_refused",
                      "availability_timeout", "deadline_exceeded", "other")
SERVER_RETRY_REASONS = ("worker_not_available", "worker_closed")

SERVER_LOG_CATALOGUE: tuple[MetricSpec, ...] = (
    _spec("server_dispatches", "counter",
          "Dispatches whose outcome livekit-server logged: assigned plus lost (a job a worker "
          "ends with terminate=true is logged by neither).", source="server_log"),
    _spec("server_dispatches_assigned", "counter",
          "Dispatches livekit-server assigned to a worker (\"assigned job to worker\").",
          source="server_log"),
    _spec("server_dispatches_lost", "counter",
          "Dispatches that got no agent, by cause: no_worker_registered, no_capacity (every "
          "node's bid was 0: workers full or at target_load), all_refused (every worker of the "
          "chosen node refused or was full), availability_timeout, deadline_exceeded (the "
          "dispatch RPC's deadline passed), other.",
          labels=("cause",), source="server_log"),
    _spec("server_dispatch_retries", "counter",
          "Offers a worker refused or lost while livekit-server went on to the next worker, by "
          "reason: worker_not_available, worker_closed.",
          labels=("reason",), source="server_log"),
    _spec("server_log_unparsed_lines", "counter",
          "Dispatch log lines recognised by their message but not counted: truncated, a "
          "partial CRI record, or without the agent name.",
          source="server_log", per_agent=False),
    _spec("server_log_heartbeats", "counter",
          "Heartbeat lines the log filter (livekit-agents-exporter server-log) writes into the "
          "stream every few seconds: when it stops growing, mtail stopped reading.",
          source="server_log", per_agent=False),
)

BY_SHORT: dict[str, MetricSpec] = {m.short: m for m in (*CATALOGUE, *SERVER_LOG_CATALOGUE)}


def series(short: str) -> str:
    """Query name of a catalogue metric; raises KeyError for a typo at import time."""
    return BY_SHORT[short].series_name


# what prometheus_client's ProcessCollector and PlatformCollector expose on Linux
PROCESS_SAMPLES = ("process_virtual_memory_bytes", "process_resident_memory_bytes",
                   "process_start_time_seconds", "process_cpu_seconds_total", "process_open_fds",
                   "process_max_fds", "python_info")


def sample_names(process: bool = True) -> tuple[str, ...]:
    """Every sample name the catalogue's families expose (and the process collector's)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
                "info": ("_info",), "gauge": ("",)}
    names = [spec.name + sfx for spec in CATALOGUE for sfx in suffixes[spec.kind]]
    return tuple(names) + (PROCESS_SAMPLES if process else ())
