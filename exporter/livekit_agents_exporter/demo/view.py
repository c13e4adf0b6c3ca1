"""The demo's live view: a frame that fits 80 columns, or plain lines for logs and pipes.

Rendering is a pure function of a ``Snapshot`` so that it can be tested without a
terminal; ``Screen`` only decides how a frame reaches stdout.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

WIDTH = 80
BAR = 20


@dataclass
class WorkerRow:
    name: str
    up: bool
    load: float = math.nan
    threshold: float = math.nan
    active_jobs: int = 0
    full: bool = False
    registered: bool = False
    offers: int = 0
    refused: int = 0
    timeouts: int = 0


@dataclass
class Pager:
    """The first lost call and the first page (a critical alert firing), in demo time."""

    first_loss_s: float | None = None
    first_page_s: float | None = None
    first_page: str = ""  # the alert's name
    lost_before_page: int = 0  # calls lost before the first page; so far, while none

    def update(self, elapsed_s: float, lost: int, critical_firing: list[str]) -> str | None:
        """Records this tick; returns an event line when the first page arrives."""
        if lost and self.first_loss_s is None:
            self.first_loss_s = elapsed_s
        if self.first_page_s is not None:
            return None
        if critical_firing:
            self.first_page_s, self.first_page = elapsed_s, critical_firing[0]
            return (f"PAGE {self.first_page}: {self.lost_before_page} calls lost before it "
                    f"({self.describe_delay()})")
        self.lost_before_page = lost
        return None

    def describe_delay(self) -> str:
        if self.first_loss_s is None or self.first_page_s is None:
            return "no call lost before it"
        return f"{self.first_page_s - self.first_loss_s:.0f}s after the first loss"

    def line(self) -> str:
        if self.first_page_s is None:
            if self.first_loss_s is None:
                return "pages: none, no call lost"
            return (f"pages: NONE YET, {self.lost_before_page} calls lost since "
                    f"t={self.first_loss_s:.0f}s")
        return (f"first page t={self.first_page_s:.0f}s: {self.lost_before_page} calls lost "
                f"before it ({self.describe_delay()})")


@dataclass
class Snapshot:
    elapsed_s: float
    duration_s: float
    arrival_rate: float
    target_load: float
    workers: list[WorkerRow]
    dispatched: int = 0
    assigned: int = 0
    lost: int = 0
    other_failures: int = 0
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (name, state)
    prometheus: str = ""  # "" when not running, else its URL or why not
    server_log_lost: int | None = None  # lost dispatches mtail counted in the server's log
    pager: Pager | None = None  # when calls were first lost and first paged about

    @property
    def headroom(self) -> float:
        """Share of fleet capacity left, capacity being min(threshold, target_load)."""
        cap = left = 0.0
        for w in self.workers:
            if not (w.up and w.registered) or math.isnan(w.load) or math.isnan(w.threshold):
                continue
            limit = min(w.threshold, self.target_load)
            cap += limit
            left += max(0.0, limit - w.load) if not w.full else 0.0
        return left / cap if cap else 0.0

    @property
    def available(self) -> int:
        return sum(1 for w in self.workers if w.up and w.registered and not w.full
                   and not math.isnan(w.load) and w.load < min(w.threshold, self.target_load))


def _bar(load: float, threshold: float) -> str:
    if math.isnan(load):
        return "?" * BAR
    filled = max(0, min(BAR, round(load * BAR)))
    cells = ["#" if i < filled else "." for i in range(BAR)]
    if not math.isnan(threshold) and 0 <= threshold <= 1:
        mark = min(BAR - 1, round(threshold * BAR))
        cells[mark] = "|"
    return "".join(cells)


def render_frame(s: Snapshot) -> list[str]:
    lines = [
        f"LiveKit Agents exporter demo  t={s.elapsed_s:4.0f}/{s.duration_s:.0f}s  "
        f"arrivals {s.arrival_rate:4.2f}/s  target_load {s.target_load:.2f}",
        "",
        f"{'worker':<9} {'load':>5} {'thr':>5} {'load vs threshold':<{BAR}} "
        f"{'jobs':>4} {'state':<5} {'offers':>6} {'refused':>7}",
    ]
    for w in s.workers:
        state = "DOWN" if not w.up else ("FULL" if w.full else ("ok" if w.registered else "unreg"))
        load = "  ?" if math.isnan(w.load) else f"{w.load:5.2f}"
        thr = "  ?" if math.isnan(w.threshold) else f"{w.threshold:5.2f}"
        lines.append(f"{w.name:<9} {load:>5} {thr:>5} {_bar(w.load, w.threshold)} "
                     f"{w.active_jobs:>4} {state:<5} {w.offers:>6} {w.refused:>7}")
    lines += [
        "",
        f"fleet: {s.available}/{len(s.workers)} workers can take a job, "
        f"headroom {s.headroom:4.0%}",
        f"dispatches: {s.dispatched} sent, {s.assigned} assigned, "
        f"{s.lost} LOST (no worker available), {s.other_failures} other",
    ]
    if s.server_log_lost is not None:
        lines.append(f"server log (mtail): {s.server_log_lost} dispatches lost")
    if s.prometheus:
        firing = [n for n, st in s.alerts if st == "firing"]
        pending = [n for n, st in s.alerts if st == "pending"]
        lines.append(f"alerts firing: {', '.join(firing) or 'none'}")
        lines.append(f"alerts pending: {', '.join(pending) or 'none'}")
        if s.pager is not None:
            lines.append(s.pager.line())
    return [line[:WIDTH] for line in lines]


def render_line(s: Snapshot) -> str:
    """One log line per tick, for when stdout is not a terminal."""
    loads = " ".join("down" if not w.up else ("?" if math.isnan(w.load) else f"{w.load:.2f}")
                     for w in s.workers)
    line = (f"t={s.elapsed_s:.0f}s rate={s.arrival_rate:.2f}/s loads=[{loads}] "
            f"available={s.available}/{len(s.workers)} headroom={s.headroom:.0%} "
            f"dispatched={s.dispatched} assigned={s.assigned} lost={s.lost}")
    if s.server_log_lost is not None:
        line += f" log_lost={s.server_log_lost}"
    firing = [n for n, st in s.alerts if st == "firing"]
    if firing:
        line += f" firing={','.join(firing)}"
    if s.pager is not None and s.pager.first_loss_s is not None:
        line += f" lost_before_page={s.pager.lost_before_page}"
    return line


class Screen:
    """Redraws in place on a terminal; prints plain lines every few ticks otherwise."""

    def __init__(self, out: TextIO = sys.stdout, plain_every_s: float = 5.0) -> None:
        self.out = out
        self.tty = out.isatty()
        self._plain_every = plain_every_s
        self._last_plain = -1e9
        self._events: deque[str] = deque(maxlen=4)
        self._started = time.monotonic()

    def event(self, message: str) -> None:
        """Something that happened once (an alert firing): kept on screen, or printed."""
        stamped = f"[t={time.monotonic() - self._started:4.0f}s] {message}"
        if self.tty:
            self._events.append(stamped[:WIDTH])
        else:
            self.say(stamped)

    def show(self, snapshot: Snapshot) -> None:
        if self.tty:
            frame = render_frame(snapshot) + ["", "recent events:", *self._events]
            self.out.write("\x1b[H\x1b[2J" + "\n".join(frame) + "\n")
        elif snapshot.elapsed_s - self._last_plain >= self._plain_every:
            self._last_plain = snapshot.elapsed_s
            self.out.write(render_line(snapshot) + "\n")
        self.out.flush()

    def say(self, message: str) -> None:
        self.out.write(message + "\n")
        self.out.flush()
