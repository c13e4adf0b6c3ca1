"""Configuration of the server-log rules: the ``server_log`` section of the pack's config.

Imported by ``config.py`` while it builds its schema (after the names used here exist),
so it imports only the schema building blocks from there.
"""

from __future__ import annotations

from .config import Option, Section, _alert, boolean, duration, number_in, selector

SERVER_LOG_ALERTS: dict[str, Section] = {
    "dispatches_lost": _alert(
        "livekit-server logged dispatches that got no agent", "critical", "0s",
        window=Option("5m", duration(allow_zero=False),
                      "window the lost dispatches are counted over; the alert resolves this "
                      "long after the last loss")),
    "dispatch_slo_fast_burn": _alert(
        "the dispatch-success error budget burns 14.4x (1h) or 6x (6h) too fast", "critical",
        "2m"),
    "dispatch_slo_slow_burn": _alert(
        "the dispatch-success error budget burns 3x (1d) or 1x (3d) too fast", "warning",
        "15m"),
    "server_log_stalled": _alert(
        "the log filter's heartbeats stopped reaching Prometheus (mtail stopped reading)",
        "warning", "5m",
        window=Option("2m", duration(allow_zero=False),
                      "window without a heartbeat; the filter writes one every 10 s")),
}

SERVER_LOG_SECTION = Section(
    "rules on livekit-server's dispatch log, as the mtail program in server-log/ counts it; "
    "where that log is not collected they never fire and the worker-side alerts remain", {
        "enabled": Option(True, boolean, "render the server-log recording rules and alerts"),
        "selector": Option('job="livekit-server-log"', selector,
                           "label matchers added to every series of the mtail program"),
        "slo_objective": Option(0.999, number_in(0.5, 1, high_open=True),
                                "share of dispatches that must get an agent (over 30 days); "
                                "the error budget is 1 minus this"),
        "alerts": Section("the server-log alerts, keyed like the pack's alerts", SERVER_LOG_ALERTS),
    })
