"""The error ``instrument()`` raises to its caller: ``InstrumentationError``.

Everything else the exporter meets while the worker runs is counted and logged instead
(``safety.py``): only a mistake the user can fix before the worker starts is raised.
"""

from __future__ import annotations


class InstrumentationError(ValueError):
    """The worker cannot be instrumented as configured; the message says why and what to do."""
