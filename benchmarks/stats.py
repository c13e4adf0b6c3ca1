"""The benchmarks' statistics: medians, bootstrap intervals and budget verdicts.

A budget verdict is an equivalence test: a figure "meets" its budget only when its whole
95% interval lies inside the budget, "does not meet" it only when the whole interval lies
outside, and is "inconclusive" when the interval straddles the budget. A point estimate
inside the budget with an interval reaching far past it (a loaded machine, too few rounds)
proves nothing either way, and is reported as such, with how many rounds would decide it.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MET = "met"
NOT_MET = "not met"
INCONCLUSIVE = "inconclusive"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (no interpolation: p99 is a value that was observed)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


def bootstrap_ci(values: Sequence[float], stat: Callable[[Sequence[float]], float] = median,
                 n: int = 2000, seed: int = 7) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of ``stat`` over ``values`` (rounds, segments)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (math.nan, math.nan)
    rng = random.Random(seed)
    stats = sorted(stat([rng.choice(values) for _ in values]) for _ in range(n))
    return stats[int(0.025 * n)], stats[int(0.975 * n) - 1]


@dataclass(frozen=True)
class Verdict:
    """A figure against an upper budget: the status, and what sized the run."""

    status: str  # MET, NOT_MET or INCONCLUSIVE
    half_width: float  # half the 95% interval, in the figure's unit
    rounds: int  # rounds (segments, pairs) the interval comes from
    rounds_to_decide: int | None  # when inconclusive: the estimated total that would decide

    @property
    def more_rounds(self) -> int | None:
        """When inconclusive: about how many rounds more than were run would decide."""
        if self.rounds_to_decide is None:
            return None
        return self.rounds_to_decide - self.rounds

    def text(self, round_name: str = "rounds") -> str:
        """``met``, ``not met``, or ``inconclusive: about N more rounds to decide (...)``."""
        if self.status != INCONCLUSIVE:
            return self.status
        if self.rounds_to_decide is None:
            return (f"{INCONCLUSIVE}: the estimate sits on the budget, more {round_name} "
                    "cannot decide")
        return (f"{INCONCLUSIVE}: about {self.more_rounds} more {round_name} to decide "
                f"({self.rounds_to_decide} in all, {self.rounds} run)")


def equivalence(estimate: float, ci: Sequence[float], budget: float, rounds: int) -> Verdict:
    """The verdict of ``estimate`` (95% interval ``ci``, from ``rounds`` rounds) against
    the upper budget ``budget`` (the figure must stay below it).

    Sizing: an interval's half-width shrinks as 1/sqrt(rounds) when the rounds are
    independent, so the side of the interval facing the budget, ``w`` from the estimate,
    clears a budget ``d`` away after about ``rounds * (w / d)**2`` rounds at the observed
    spread. That is an estimate, not a promise: a noisier machine needs more.
    """
    lo, hi = float(ci[0]), float(ci[1])
    half = (hi - lo) / 2
    if math.isnan(lo) or math.isnan(hi) or math.isnan(estimate):
        return Verdict(INCONCLUSIVE, half, rounds, None)
    if hi < budget:
        return Verdict(MET, half, rounds, None)
    if lo >= budget:
        return Verdict(NOT_MET, half, rounds, None)
    gap = abs(budget - estimate)
    facing = hi - estimate if estimate < budget else estimate - lo
    if gap == 0 or facing <= 0 or rounds < 1:
        return Verdict(INCONCLUSIVE, half, rounds, None)
    needed = math.ceil(rounds * (facing / gap) ** 2)
    return Verdict(INCONCLUSIVE, half, rounds, max(needed, rounds + 1))
