"""The dispatch rules of livekit-server, as the simulator applies them."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from livekit_agents_exporter.simulator.dispatch import (
    AVAILABLE,
    FULL,
    WorkerState,
    affinity,
    candidates,
    choose_node,
    pick_worker,
)

ROOM = 0


def w(wid: str, load: float = 0.0, node: int = 0, status: str = AVAILABLE,
      agent: str = "a", registered: bool = True) -> WorkerState:
    return WorkerState(wid, node, agent, ROOM, status, load, registered)


def test_only_registered_available_workers_of_the_agent_and_type_are_candidates():
    workers = [w("ok"), w("full", status=FULL), w("other", agent="b"), w("gone", registered=False),
               WorkerState("publisher", 0, "a", 1)]
    assert [c.worker_id for c in candidates(workers, "a", ROOM)] == ["ok"]


def test_affinity_is_headroom_below_target_load():
    assert affinity([w("x", 0.2), w("y", 0.5), w("z", 0.9)], 0.7) == pytest.approx(0.5 + 0.2)


def test_a_zero_bid_never_wins():
    rng = random.Random(1)
    # available by status, but at or above the server's target load: no job
    assert choose_node([w("x", 0.7), w("y", 0.95, node=1)], 0.7, rng) is None


def test_highest_bid_wins_across_nodes():
    rng = random.Random(1)
    cands = [w("a0", 0.6, node=0), w("b0", 0.6, node=0),  # bid 0.2
             w("a1", 0.1, node=1)]                          # bid 0.6
    assert {choose_node(cands, 0.7, rng) for _ in range(50)} == {1}


def test_weighted_choice_follows_one_minus_load():
    rng = random.Random(42)
    cands = [w("idle", 0.0), w("busy", 0.75)]
    picks = Counter(pick_worker(cands, rng).worker_id for _ in range(20_000))
    share = picks["idle"] / 20_000
    assert share == pytest.approx(1.0 / 1.25, abs=0.015)  # weights 1.0 and 0.25


def test_weights_summing_to_zero_end_the_job():
    assert pick_worker([w("x", 1.0), w("y", 1.2)], random.Random(3)) is None
