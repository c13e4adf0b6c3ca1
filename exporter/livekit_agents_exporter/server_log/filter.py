"""The log filter between livekit-server's log and mtail: clean lines, joined, with a heartbeat.

Three things stand between a real log and correct counts, and mtail handles none of them:

- mtail 3.0.0~rc50 (Debian's) stops reading a file for good at an invalid UTF-8 byte or a
  U+FFFD (google/mtail#698), and zap writes user-controlled text (room names) raw, so one
  room name can blind it. The filter replaces both with ``?``.
- The container runtime splits long lines into partial CRI records (``<time> <stream> P
  <text>``); the filter strips the CRI prefix and joins the partial records into the line.
- Nothing says mtail stopped reading. The filter writes a heartbeat line every few seconds;
  the mtail program counts them (``livekit_agents_server_log_heartbeats_total``) and the
  alert pack pages a ticket when they stop.

Standard library only, so it runs in any image that has Python 3.9+.
"""

from __future__ import annotations

import glob
import os
import re
import select
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

HEARTBEAT_PREFIX = b"livekit-agents-exporter server-log heartbeat "
_CRI = re.compile(rb"^(\S+) (stdout|stderr) ([PF]) ?(.*)$", re.S)
_READ_SIZE = 1 << 16
# a rotated file is still read this long: its writer may not have switched files yet
ROTATED_GRACE_S = 2.0


def clean(line: bytes) -> bytes:
    """The line with every invalid UTF-8 sequence and every U+FFFD replaced by ``?``."""
    return line.decode("utf-8", errors="replace").replace("\ufffd", "?").encode("utf-8")


class Joiner:
    """Turns raw lines (CRI-wrapped or not) into whole log lines."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, raw: bytes) -> bytes | None:
        """The complete line ``raw`` ends, or None while a partial CRI record is pending."""
        match = _CRI.match(raw)
        if match is None:
            if self._partial:  # a plain line after a partial record: emit what we had
                line, self._partial = self._partial + raw, b""
                return line
            return raw
        text = match.group(4)
        if match.group(3) == b"P":
            self._partial += text
            return None
        line, self._partial = self._partial + text, b""
        return line


@dataclass
class _Followed:
    path: str
    file: BinaryIO
    inode: int
    buffer: bytes = b""
    joiner: Joiner = field(default_factory=Joiner)


class Filter:
    """Follows files (glob patterns, re-expanded) or reads a stream, writing clean lines."""

    def __init__(self, out: BinaryIO, heartbeat: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.out, self.heartbeat, self._clock = out, heartbeat, clock
        self._next_beat = 0.0
        self.lines = 0

    def emit(self, raw: bytes, joiner: Joiner) -> None:
        line = joiner.feed(raw.rstrip(b"\r\n"))
        if line is None:
            return
        self.out.write(clean(line) + b"\n")
        self.out.flush()
        self.lines += 1

    def beat(self) -> None:
        now = self._clock()
        if self.heartbeat > 0 and now >= self._next_beat:
            self.out.write(HEARTBEAT_PREFIX + f"{now:.3f}".encode() + b"\n")
            self.out.flush()
            self._next_beat = now + self.heartbeat

    # -- a stream (stdin) ------------------------------------------------------------
    def run_stream(self, stream: BinaryIO) -> None:
        joiner, pending = Joiner(), b""
        fd = stream.fileno()
        while True:
            self.beat()
            ready, _, _ = select.select([fd], [], [], self._wait())
            if not ready:
                continue
            chunk = os.read(fd, _READ_SIZE)
            if not chunk:
                if pending:
                    self.emit(pending, joiner)
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self.emit(raw, joiner)

    def _wait(self) -> float:
        if self.heartbeat <= 0:
            return 1.0
        return max(0.0, min(1.0, self._next_beat - self._clock()))

    # -- files -------------------------------------------------------------------------
    def run_files(self, patterns: Iterable[str], poll: float = 0.25, from_start: bool = False,
                  until: Callable[[], bool] = lambda: False) -> None:
        """Follows every file matching ``patterns``, picking up new ones and rotations.

        Files found at start are read from their end unless ``from_start``; files that
        appear later (a new pod, a rotation) are read from their beginning. A rotated file
        is read to its end before its successor.
        """
        patterns = list(patterns)
        followed: dict[str, _Followed] = {}
        self._rotated: list[tuple[_Followed, float]] = []
        first = True
        while not until():
            for path in sorted({p for pattern in patterns for p in glob.glob(pattern)}):
                self._open(followed, path, at_end=first and not from_start)
            first = False
            self.beat()  # after the files are open: a heartbeat means they are followed
            for state in list(followed.values()):
                self._read(state)
                self._check_rotation(followed, state)
            self._drain_rotated(time.monotonic())
            time.sleep(poll)
        for state in followed.values():
            self._read(state)
            state.file.close()
        self._drain_rotated(float("inf"))

    def _open(self, followed: dict[str, _Followed], path: str, at_end: bool) -> None:
        if path in followed:
            return
        try:
            file = open(path, "rb")  # noqa: SIM115 - kept open while followed
        except OSError:
            return
        if at_end:
            file.seek(0, os.SEEK_END)
        followed[path] = _Followed(path, file, os.fstat(file.fileno()).st_ino)

    def _read(self, state: _Followed) -> None:
        while True:
            try:
                chunk = state.file.read(_READ_SIZE)
            except OSError as exc:  # unreadable now (a dying volume): say so, try again later
                print(f"livekit-agents-exporter server-log: {state.path}: {exc.strerror}",
                      file=sys.stderr)
                return
            if not chunk:
                return
            state.buffer += chunk
            *lines, state.buffer = state.buffer.split(b"\n")
            for raw in lines:
                self.emit(raw, state.joiner)

    def _check_rotation(self, followed: dict[str, _Followed], state: _Followed) -> None:
        try:
            current = os.stat(state.path)
        except FileNotFoundError:
            current = None
        if current is not None and current.st_ino == state.inode:
            if current.st_size < state.file.tell():  # truncated in place (copytruncate)
                state.file.seek(0)
                state.buffer = b""
            return
        # renamed or deleted: read on for a grace period, its successor from the start
        del followed[state.path]
        self._rotated.append((state, time.monotonic() + ROTATED_GRACE_S))
        if current is not None:
            self._open(followed, state.path, at_end=False)

    def _drain_rotated(self, now: float) -> None:
        kept = []
        for state, until in self._rotated:
            self._read(state)
            if now < until:
                kept.append((state, until))
                continue
            if state.buffer:  # the writer left a last line without its newline
                self.emit(state.buffer, state.joiner)
            state.file.close()
        self._rotated = kept


def main_stream() -> None:
    """``python -m livekit_agents_exporter.server_log.filter``: stdin to stdout."""
    Filter(sys.stdout.buffer).run_stream(sys.stdin.buffer)


if __name__ == "__main__":
    main_stream()
