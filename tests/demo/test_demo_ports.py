"""The demo's port check binds as its servers will: TIME-WAIT is free, a listener is not."""

from __future__ import annotations

import socket
import time

import pytest

from livekit_agents_exporter.cli import UsageError, build_parser
from livekit_agents_exporter.commands import demo


def _args(port: int):
    return build_parser().parse_args(["demo", "--workers", "1", "--metrics-port", str(port)])


def _time_wait_port() -> int:
    """A port whose only socket is in TIME-WAIT: the server side closed a connection first."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        conn.close()  # the side that closes first keeps the TIME-WAIT, on the server's port
        deadline = time.monotonic() + 5
        while client.recv(1) and time.monotonic() < deadline:
            pass
        client.close()
    return port


def _in_time_wait(port: int) -> bool:
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return any(int(r[1].split(":")[1], 16) == port and r[3] == "06" for r in rows)  # 06: TIME_WAIT


def test_a_socket_in_time_wait_does_not_make_the_port_busy():
    port = _time_wait_port()
    assert _in_time_wait(port), f"port {port} is not in TIME-WAIT; the test proves nothing"
    demo._validate(_args(port))  # raises UsageError if the check were a plain bind


def test_a_listening_port_is_refused_with_the_make_hint():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError) as err:
            demo._validate(_args(port))
    assert str(err.value) == (f"port {port} is already in use; choose another with "
                              "--metrics-port / --sim-port (through make: "
                              'make demo DEMO_ARGS="--metrics-port 10791")')
