"""Suite-wide: tests that do not touch livekit-agents run once, not per SDK version; and a
run that is over ends, whatever threads a failed test left behind."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

import pytest

SDK_INDEPENDENT_DIRS = ("alerts", "dashboard", "packaging")
_EXIT_STATUS = pytest.StashKey[int]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if any(d in parts for d in SDK_INDEPENDENT_DIRS):
            item.add_marker(pytest.mark.sdk_independent)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """livekit-agents runs jobs on non-daemon threads; when a failed test leaves one running,
    the interpreter would wait for it forever after the report is printed (a CI run once hung
    this way until its time limit). Name them, then exit with pytest's own status."""
    lingering = [t.name for t in threading.enumerate()
                 if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if not lingering or _EXIT_STATUS not in config.stash:
        return
    logging.shutdown()
    print(f"\nconftest: exiting past non-daemon threads left running: {', '.join(lingering)}",
          file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(config.stash[_EXIT_STATUS])

