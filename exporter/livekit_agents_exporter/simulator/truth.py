"""What the simulated server saw: the ground truth tests compare the exporter with."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

OUTCOMES = ("assigned", "no_worker_available", "availability_timeout", "rejected_terminate")


@dataclass
class WorkerTruth:
    worker_id: str
    agent_name: str
    node: int
    availability_requests: int = 0
    answers_available: int = 0
    answers_unavailable: int = 0
    answers_terminate: int = 0  # subset of answers_unavailable
    answer_timeouts: int = 0
    assignments_sent: int = 0
    assignments_withheld: int = 0
    status_updates: int = 0
    full_transitions: int = 0  # status reports that turned this connection's status to full
    last_status: str = ""
    last_load: float = 0.0
    last_job_count: int = 0
    jobs_running: int = 0
    jobs_started: int = 0  # UpdateJobStatus JS_RUNNING received
    jobs_finished: int = 0
    jobs_failed: int = 0
    migrated_jobs: int = 0
    connected: bool = True
    # every availability answer per job, in order: a handler that answers twice sends two,
    # and the server acts on the first
    answers_by_job: dict[str, list[bool]] = field(default_factory=dict)
    launched_jobs: set[str] = field(default_factory=set)  # jobs reported JS_RUNNING

    def first_answers(self, available: bool) -> int:
        """Jobs whose first answer was ``available`` (what the server acted on)."""
        return sum(1 for answers in self.answers_by_job.values() if answers[0] == available)

    @property
    def repeated_answers(self) -> int:
        """Answers after a job's first one (ignored by the server)."""
        return sum(len(answers) - 1 for answers in self.answers_by_job.values())


@dataclass
class Truth:
    workers: dict[str, WorkerTruth] = field(default_factory=dict)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)  # agent_name -> outcome
    registrations: Counter[str] = field(default_factory=Counter)  # agent_name -> count

    def outcomes_for_agent(self, agent_name: str) -> dict[str, int]:
        return dict(self.outcomes.get(agent_name, Counter()))

    def registrations_for_agent(self, agent_name: str) -> int:
        return self.registrations[agent_name]

    def for_agent(self, agent_name: str) -> list[WorkerTruth]:
        return [w for w in self.workers.values() if w.agent_name == agent_name]

    def total(self, field_name: str, agent_name: str | None = None) -> int:
        workers = self.workers.values() if agent_name is None else self.for_agent(agent_name)
        return sum(getattr(w, field_name) for w in workers)
