"""Fixtures of the minor-release matrix scenario: the simulator and a short assignment timeout."""

from __future__ import annotations

from worker_harness import short_assignment_timeout, sim  # noqa: F401 - fixtures
