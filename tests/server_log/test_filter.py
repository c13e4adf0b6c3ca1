"""The log filter: CRI records joined, bad bytes cleaned, files followed across rotations,
heartbeats written; and the command's bad input is one clear line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from livekit_agents_exporter.server_log.filter import HEARTBEAT_PREFIX, Filter, Joiner, clean


def test_clean_replaces_invalid_utf8_and_the_replacement_character() -> None:
    assert clean(b'room "caf\xc3\xa9 \xef\xbf\xbd \xff\xfe" ok') == 'room "café ? ??" ok'.encode()


def test_partial_cri_records_are_joined_and_the_prefix_stripped() -> None:
    j = Joiner()
    assert j.feed(b"2026-12-01T10:00:00.1Z stderr P {\"msg\":\"failed to") is None
    assert j.feed(b"2026-12-01T10:00:00.2Z stderr P  send job request\",") is None
    assert j.feed(b'2026-12-01T10:00:00.3Z stderr F "agentName":"a"}') == \
        b'{"msg":"failed to send job request","agentName":"a"}'
    assert j.feed(b"2026-12-01T10:00:01Z stdout F plain") == b"plain"
    assert j.feed(b"not a CRI line") == b"not a CRI line"


def _lines(out: io.BytesIO) -> list[bytes]:
    return [line for line in out.getvalue().splitlines() if not line.startswith(HEARTBEAT_PREFIX)]


def _wait(predicate, timeout: float = 10.0, seen=lambda: None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out; saw {seen()}"
        time.sleep(0.02)


def test_following_files_survives_rotation_and_sees_new_files(tmp_path: Path) -> None:
    old = tmp_path / "a.log"
    old.write_bytes(b"before start\n")  # existing content is skipped: mtail's view too
    out, stop = io.BytesIO(), threading.Event()
    f = Filter(out, heartbeat=0.1)
    thread = threading.Thread(target=f.run_files, args=([str(tmp_path / "*.log")],),
                              kwargs={"poll": 0.02, "until": stop.is_set})
    thread.start()
    try:
        _wait(lambda: out.getvalue().startswith(HEARTBEAT_PREFIX))
        with old.open("ab") as w:
            w.write(b"one\ntw")  # a line being written: held until its newline
        _wait(lambda: _lines(out) == [b"one"])
        os.rename(old, tmp_path / "a.log.1")
        with (tmp_path / "a.log.1").open("ab") as w:
            w.write(b"o\n")  # the rotated file's last bytes are still read
        old.write_bytes(b"three\n")
        (tmp_path / "b.log").write_bytes(b"2026-12-01T10:00:00Z stderr F four\n")
        _wait(lambda: sorted(_lines(out)) == [b"four", b"one", b"three", b"two"],
              seen=lambda: _lines(out))
        with old.open("r+b") as w:  # copytruncate: the file shrinks in place
            w.truncate(0)
        with old.open("ab") as w:
            w.write(b"five\n")
        _wait(lambda: _lines(out)[-1:] == [b"five"], seen=lambda: _lines(out))
        assert out.getvalue().count(HEARTBEAT_PREFIX) >= 2
    finally:
        stop.set()
        thread.join(timeout=10)


def test_stream_mode_cleans_and_beats(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "livekit_agents_exporter", "server-log", "--heartbeat", "5"],
        input=b"ok \xff\nlast line without newline", capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(HEARTBEAT_PREFIX) and lines[1:] == [b"ok ?",
                                                                  b"last line without newline"]


def test_bad_arguments_are_one_clear_line(tmp_path: Path) -> None:
    for args, message in ((["-o", str(tmp_path / "missing" / "x")], "cannot write"),
                          (["--poll", "0"], "--poll > 0")):
        proc = subprocess.run([sys.executable, "-m", "livekit_agents_exporter", "server-log",
                               *args], capture_output=True, text=True, timeout=30, input="")
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
