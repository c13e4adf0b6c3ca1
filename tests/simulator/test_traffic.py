"""The traffic generator: a Poisson process that follows its rate profile."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from livekit_agents_exporter.simulator.traffic import (
    RateProfile,
    arrivals,
    exponential_durations,
    fixed_durations,
    lognormal_durations,
)


def test_parse_and_interpolate():
    p = RateProfile.parse("0:0.5, 60:3,120:3,180:0.5")
    assert p.duration == 180 and p.peak == 3
    assert p.rate_at(30) == pytest.approx(1.75)
    assert p.rate_at(90) == 3
    assert p.rate_at(500) == 0.5
    assert p.expected_arrivals() == pytest.approx(1.75 * 60 + 3 * 60 + 1.75 * 60)


@pytest.mark.parametrize("text, message", [
    ("", "at least one"),
    ("10:1", "first point must be at time 0"),
    ("0:1,0:2", "increase strictly"),
    ("0:1,5", "time_s:jobs_per_s"),
    ("0:x", "numbers"),
    ("0:-1", ">= 0"),
    ("0:nan", "finite"),
])
def test_bad_profiles_are_explained(text, message):
    with pytest.raises(ValueError, match=message):
        RateProfile.parse(text)


def test_arrival_count_matches_the_integral_of_the_rate():
    profile = RateProfile.parse("0:1,100:5,200:5,300:1")
    expected = profile.expected_arrivals()  # 900
    counts = [sum(1 for _ in arrivals(profile, random.Random(seed))) for seed in range(30)]
    mean = statistics.fmean(counts)
    # Poisson: sd of the mean of 30 runs is sqrt(900/30) ~ 5.5; allow 4 sd
    assert abs(mean - expected) < 4 * math.sqrt(expected / 30)
    assert statistics.variance(counts) == pytest.approx(expected, rel=0.6)


def test_arrivals_follow_the_profile_shape():
    profile = RateProfile.parse("0:0.5,100:4")
    times = list(arrivals(profile, random.Random(9)))
    early = sum(1 for t in times if t < 50)
    late = sum(1 for t in times if t >= 50)
    assert early == pytest.approx(profile.expected_arrivals(50), rel=0.2)
    assert late == pytest.approx(profile.expected_arrivals() - profile.expected_arrivals(50),
                                 rel=0.15)


def test_constant_rate_inter_arrivals_are_exponential():
    times = list(arrivals(RateProfile.parse("0:2,2000:2"), random.Random(5)))
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert statistics.fmean(gaps) == pytest.approx(0.5, rel=0.05)
    # exponential: sd equals the mean
    assert statistics.pstdev(gaps) == pytest.approx(0.5, rel=0.08)


@pytest.mark.parametrize("sampler, mean", [
    (fixed_durations(12), 12), (exponential_durations(12), 12), (lognormal_durations(12), 12),
])
def test_duration_samplers_have_the_requested_mean(sampler, mean):
    rng = random.Random(11)
    values = [sampler(rng) for _ in range(20_000)]
    assert statistics.fmean(values) == pytest.approx(mean, rel=0.03)
    assert min(values) > 0


def test_bad_durations_are_refused():
    with pytest.raises(ValueError, match="positive"):
        lognormal_durations(0)
