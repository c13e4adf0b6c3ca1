"""The live view fits an 80-column terminal and degrades to plain lines off a TTY."""

from __future__ import annotations

import io
import math

from livekit_agents_exporter.demo.view import Screen, Snapshot, WorkerRow, render_frame


def _snapshot(**kw) -> Snapshot:
    workers = [
        WorkerRow("worker-1", up=True, load=0.75, threshold=0.7, active_jobs=3, full=True,
                  registered=True, offers=120, refused=31),
        WorkerRow("worker-2", up=True, load=0.25, threshold=0.7, active_jobs=1,
                  registered=True, offers=99999, refused=1234567),
        WorkerRow("worker-3", up=False),
        WorkerRow("worker-4", up=True, load=math.nan, threshold=0.7, registered=False),
    ]
    base = dict(elapsed_s=95, duration_s=220, arrival_rate=1.2, target_load=0.7,
                workers=workers, dispatched=400, assigned=350, lost=50,
                alerts=[("LiveKitAgentsNoCapacity", "firing"),
                        ("LiveKitAgentsCapacityLow", "pending")],
                prometheus="http://127.0.0.1:9090")
    base.update(kw)
    return Snapshot(**base)


def test_frame_fits_80_columns_and_shows_the_saturation_story():
    frame = render_frame(_snapshot())
    assert all(len(line) <= 80 for line in frame)
    text = "\n".join(frame)
    assert "FULL" in text and "DOWN" in text and "unreg" in text
    assert "50 LOST" in text
    assert "1/4 workers can take a job" in text
    assert "LiveKitAgentsNoCapacity" in text and "LiveKitAgentsCapacityLow" in text


def test_headroom_counts_capacity_as_min_of_threshold_and_target_load():
    snap = _snapshot(target_load=0.5)
    # worker-1 full (0 left of 0.5), worker-2 0.25 left of 0.5 -> 25 %
    assert math.isclose(snap.headroom, 0.25)


def test_plain_output_when_not_a_tty():
    out = io.StringIO()
    screen = Screen(out, plain_every_s=5)
    screen.show(_snapshot(elapsed_s=0))
    screen.show(_snapshot(elapsed_s=2))  # within 5 s: not repeated
    screen.show(_snapshot(elapsed_s=6))
    screen.event("alert LiveKitAgentsNoCapacity firing")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert "\x1b" not in out.getvalue()
    assert lines[0].startswith("t=0s") and "lost=50" in lines[0]
    assert "firing=LiveKitAgentsNoCapacity" in lines[0]
    assert lines[2].endswith("alert LiveKitAgentsNoCapacity firing")


def test_the_view_counts_calls_lost_before_the_first_page():
    from livekit_agents_exporter.demo.view import Pager

    pager = Pager()
    assert pager.update(10, 0, []) is None and pager.line() == "pages: none, no call lost"
    assert pager.update(11, 3, []) is None
    assert pager.line() == "pages: NONE YET, 3 calls lost since t=11s"
    assert pager.update(14, 9, []) is None
    event = pager.update(15, 12, ["LiveKitAgentsNoCapacity"])
    # the losses counted are those seen before the tick that saw the page
    assert event == "PAGE LiveKitAgentsNoCapacity: 9 calls lost before it (4s after the first loss)"
    assert pager.update(16, 20, ["LiveKitAgentsNoCapacity"]) is None  # the first page only
    assert pager.line() == "first page t=15s: 9 calls lost before it (4s after the first loss)"
    frame = "\n".join(render_frame(_snapshot(pager=pager)))
    assert "first page t=15s: 9 calls lost before it" in frame
