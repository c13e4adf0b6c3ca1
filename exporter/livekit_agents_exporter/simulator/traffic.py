"""Job arrivals and durations: a non-homogeneous Poisson process and its driver.

A rate profile is piecewise linear between ``time_s:jobs_per_s`` points, e.g.
``"0:0.5,60:3,120:3,180:0.5"`` ramps past fleet capacity, holds, and ramps down.
Arrivals are drawn by thinning (Lewis and Shedler): candidates at the peak rate,
each kept with probability ``rate(t) / peak``.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

DurationSampler = Callable[[random.Random], float]


@dataclass(frozen=True)
class RateProfile:
    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError("a rate profile needs at least one time:rate point")
        times = [t for t, _ in self.points]
        if times[0] != 0:
            raise ValueError(f"the first point must be at time 0, got {times[0]:g}")
        if any(b <= a for a, b in zip(times, times[1:], strict=False)):
            raise ValueError("point times must increase strictly")
        for t, rate in self.points:
            if not (math.isfinite(rate) and rate >= 0):
                raise ValueError(f"rate at {t:g}s must be a finite number >= 0, got {rate}")

    @classmethod
    def parse(cls, text: str) -> RateProfile:
        points = []
        for part in text.replace(" ", "").split(","):
            if not part:
                continue
            time_s, sep, rate = part.partition(":")
            if not sep:
                raise ValueError(f"{part!r} is not time_s:jobs_per_s (e.g. 60:2.5)")
            try:
                points.append((float(time_s), float(rate)))
            except ValueError:
                raise ValueError(f"{part!r} is not time_s:jobs_per_s (numbers)") from None
        return cls(tuple(points))

    @property
    def duration(self) -> float:
        return self.points[-1][0]

    @property
    def peak(self) -> float:
        return max(rate for _, rate in self.points)

    def rate_at(self, t: float) -> float:
        if t <= 0:
            return self.points[0][1]
        for (t0, r0), (t1, r1) in zip(self.points, self.points[1:], strict=False):
            if t0 <= t <= t1:
                return r0 + (r1 - r0) * (t - t0) / (t1 - t0)
        return self.points[-1][1]

    def expected_arrivals(self, until: float | None = None) -> float:
        """Integral of the rate: the mean number of arrivals in [0, until]."""
        end = self.duration if until is None else until
        total = 0.0
        for (t0, _), (t1, _) in zip(self.points, self.points[1:], strict=False):
            a, b = max(t0, 0.0), min(t1, end)
            if b > a:
                total += (self.rate_at(a) + self.rate_at(b)) / 2 * (b - a)
        if end > self.duration:
            total += self.points[-1][1] * (end - self.duration)
        return total


def arrivals(profile: RateProfile, rng: random.Random,
             duration: float | None = None) -> Iterator[float]:
    """Arrival times in seconds from 0, by thinning a Poisson process at the peak rate."""
    end = profile.duration if duration is None else duration
    peak = profile.peak
    if peak <= 0:
        return
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t > end:
            return
        if rng.random() * peak <= profile.rate_at(t):
            yield t


def fixed_durations(seconds: float) -> DurationSampler:
    _positive(seconds)
    return lambda rng: seconds


def exponential_durations(mean: float) -> DurationSampler:
    _positive(mean)
    return lambda rng: rng.expovariate(1.0 / mean)


def lognormal_durations(mean: float, sigma: float = 0.5) -> DurationSampler:
    """Lognormal with the given mean: call lengths are skewed, a few run long."""
    _positive(mean)
    mu = math.log(mean) - sigma * sigma / 2
    return lambda rng: rng.lognormvariate(mu, sigma)


def _positive(value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"job duration must be a positive number of seconds, got {value}")


class TrafficGenerator:
    """Dispatches jobs to a simulator at profile-driven Poisson arrival times."""

    def __init__(self, sim: Any, profile: RateProfile, *, durations: DurationSampler,
                 agent_name: str = "", seed: int | None = None, max_in_flight: int = 500,
                 extra_metadata: dict[str, Any] | None = None) -> None:
        self.sim, self.profile, self.durations = sim, profile, durations
        self.agent_name = agent_name
        self.rng = random.Random(seed)
        self.max_in_flight = max_in_flight
        self.extra_metadata = extra_metadata or {}
        self.results: list[Any] = []

    async def run(self, duration: float | None = None) -> list[Any]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        gate = asyncio.Semaphore(self.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()

        async def one(job_s: float) -> None:
            async with gate:
                meta = {"duration": round(job_s, 3), **self.extra_metadata}
                self.results.append(await self.sim.dispatch(self.agent_name, meta))

        try:
            for at in arrivals(self.profile, self.rng, duration):
                delay = start + at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.ensure_future(one(self.durations(self.rng)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        return self.results
