"""The simulator's own ``/metrics``: the ground truth (``truth.py``) as Prometheus series.

The real livekit-server exports nothing about agents; these series exist so that
the demo, the end-to-end tests and the benchmarks can put the exporter's numbers
next to the dispatcher's.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from .truth import OUTCOMES


class GroundTruthMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.dispatches = Counter("livekit_simulator_dispatches", "Jobs the dispatcher tried to "
                                  "place, by final outcome.", ["agent_name", "outcome"], registry=r)
        self.offers = Counter("livekit_simulator_availability_requests",
                              "AvailabilityRequests sent to workers.", ["agent_name"], registry=r)
        self.answers = Counter("livekit_simulator_availability_answers",
                               "Availability answers received, by result (available, "
                               "unavailable, terminate) or timeout.",
                               ["agent_name", "result"], registry=r)
        self.assignments = Counter("livekit_simulator_assignments", "JobAssignments sent.",
                                   ["agent_name"], registry=r)
        self.withheld = Counter("livekit_simulator_assignments_withheld",
                                "Assignments withheld or delayed on purpose (fault injection).",
                                ["agent_name"], registry=r)
        self.registrations = Counter("livekit_simulator_worker_registrations",
                                     "Worker registrations.", ["agent_name"], registry=r)
        self.workers = Gauge("livekit_simulator_workers_registered",
                             "Workers currently connected.", ["agent_name"], registry=r)
        self.jobs_running = Gauge("livekit_simulator_jobs_running",
                                  "Jobs reported running by workers.", ["agent_name"], registry=r)

    def init_agent(self, agent_name: str) -> None:
        for outcome in OUTCOMES:
            self.dispatches.labels(agent_name, outcome)
        for result in ("available", "unavailable", "terminate", "timeout"):
            self.answers.labels(agent_name, result)
        for metric in (self.offers, self.assignments, self.withheld, self.registrations,
                       self.workers, self.jobs_running):
            metric.labels(agent_name)
