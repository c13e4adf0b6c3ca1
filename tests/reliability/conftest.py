"""Fixtures for the reliability suite (worker harness and lag probe: ``tests/worker_harness.py``)."""

from __future__ import annotations

from worker_harness import sim  # noqa: F401 - the fixture, skipped until the simulator lands
