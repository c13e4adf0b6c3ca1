"""The SDK range is declared once in code; packaging, the CI matrix and the README agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

from livekit_agents_exporter import sdk

ROOT = Path(__file__).resolve().parents[2]


def _minor(bound: str) -> tuple[int, int]:
    major, minor = re.search(r"(\d+)\.(\d+)", bound).groups()
    return int(major), int(minor)


def test_the_livekit_extra_is_a_lower_bound_only():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert extras["livekit"] == [f"livekit-agents{sdk.TESTED_SDK_RANGE[0]}"], extras["livekit"]


def test_the_matrix_covers_every_minor_of_the_tested_range():
    makefile = (ROOT / "Makefile").read_text()
    listed = re.search(r"^MATRIX_SDKS \?= (.+)$", makefile, re.M).group(1).split()
    minors = [_minor(v) for v in listed]
    low, high = _minor(sdk.TESTED_SDK_RANGE[0]), _minor(sdk.TESTED_SDK_RANGE[1])
    expected = [(low[0], m) for m in range(low[1], high[1])]
    assert minors == expected, (listed, sdk.TESTED_SDK_RANGE)
    assert all(sdk.version_in_range(v) for v in listed), listed


def test_the_readme_names_the_tested_range():
    readme = (ROOT / "README.md").read_text()
    assert f"`{','.join(sdk.TESTED_SDK_RANGE)}`" in readme
