"""The open-source livekit-server's rules for placing a job, as pure functions.

Kept free of I/O so they can be unit-tested exactly. Followed from livekit-server
(``pkg/agent/client.go``, ``pkg/agent/worker.go``, ``pkg/service/agentservice.go``) and
psrpc's affinity selection:

- only registered workers whose last reported status is ``WS_AVAILABLE``, for the job's
  agent name and type, are candidates;
- each node bids ``JobRequestAffinity``, the sum over its candidates of
  ``max(0, target_load - load)``; psrpc keeps the strictly highest bid starting from 0,
  so a bid of 0 never wins (ties go to whichever claim arrives first: random here);
- on the chosen node a not-yet-asked worker is drawn with weight ``max(0, 1 - load)``;
  a weight sum of 0 ends the job ("no worker available to handle job");
- ``terminate=true`` ends the job; ``available=false`` (or the worker closing while
  asked) moves on to the next worker *of that node*; no answer before the RPC's
  deadline (3 s from the first request, shared by all attempts) loses the job.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

AVAILABLE = "WS_AVAILABLE"
FULL = "WS_FULL"


@dataclass
class WorkerState:
    worker_id: str
    node: int
    agent_name: str
    job_type: int
    status: str = AVAILABLE
    load: float = 0.0
    registered: bool = True


def candidates(workers: Iterable[WorkerState], agent_name: str, job_type: int) -> list[WorkerState]:
    return [w for w in workers if w.registered and w.status == AVAILABLE
            and w.agent_name == agent_name and w.job_type == job_type]


def affinity(workers: Iterable[WorkerState], target_load: float) -> float:
    return sum(max(0.0, target_load - w.load) for w in workers)


def choose_node(cands: Sequence[WorkerState], target_load: float,
                rng: random.Random) -> int | None:
    """The node whose bid is highest; None when every bid is 0 (no worker available)."""
    bids: dict[int, float] = {}
    for w in cands:
        bids[w.node] = bids.get(w.node, 0.0) + max(0.0, target_load - w.load)
    positive = {node: bid for node, bid in bids.items() if bid > 0}
    if not positive:
        return None
    best = max(positive.values())
    return rng.choice(sorted(node for node, bid in positive.items() if bid == best))


def pick_worker(cands: Sequence[WorkerState], rng: random.Random) -> WorkerState | None:
    """A worker drawn with probability proportional to ``1 - load``; None if all weigh 0."""
    weights = [max(0.0, 1.0 - w.load) for w in cands]
    if sum(weights) <= 0:
        return None
    return rng.choices(list(cands), weights=weights, k=1)[0]
