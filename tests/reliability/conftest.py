"""Fixtures for the reliability suite (the worker harness and lag probe are in
``tests/worker_harness.py``)."""

from __future__ import annotations

from worker_harness import short_assignment_timeout, sim  # noqa: F401 - fixtures
