"""Fixtures of the user-script suite: the simulator the scripts connect to."""

from __future__ import annotations

from worker_harness import sim  # noqa: F401 - fixture
