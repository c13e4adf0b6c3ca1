"""ErrorSink.guard: the exporter's own errors are counted, logged once a minute, swallowed."""

from __future__ import annotations

import logging

import pytest

from livekit_agents_exporter.safety import ErrorSink


def test_exception_is_counted_logged_with_traceback_and_swallowed(caplog):
    sink, counted = ErrorSink(), []
    sink.bind(counted.append)
    with caplog.at_level(logging.WARNING, logger="livekit_agents_exporter"):
        for _ in range(3):
            with sink.guard("load_fnc"):
                raise ValueError("boom")
    assert counted == ["load_fnc"] * 3
    records = [r for r in caplog.records if "internal error in load_fnc" in r.getMessage()]
    assert len(records) == 1  # rate limited
    assert records[0].exc_info and records[0].exc_info[0] is ValueError


def test_base_exceptions_and_normal_exits_pass_through():
    sink, counted = ErrorSink(), []
    sink.bind(counted.append)
    with pytest.raises(KeyboardInterrupt):
        with sink.guard("x"):
            raise KeyboardInterrupt
    with sink.guard("x"):
        pass
    assert counted == [], "a guarded block that ended normally was counted as an error"
