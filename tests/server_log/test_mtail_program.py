"""The shipped mtail program, run by the real mtail over livekit-server's log formats.

The golden logs (``golden/``) were built by hand from zap's documented encodings, the
encoder livekit/protocol's logger uses (JSON for ``logging.json: true``, console otherwise),
with the messages and fields of ``pkg/agent/client.go`` ``LaunchJob``/``TerminateJob`` and
``pkg/service/agentservice.go`` ``JobRequest``. They hold every dispatch outcome, the twin
lines of one loss, retries, TerminateJob's look-alike line, an ERROR with its stack trace,
a room name that tries to fake a field, a truncated line, and (CRI) a split record.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from mtail_support import c, one_shot, scrape, wait_for

from livekit_agents_exporter import metrics as m
from livekit_agents_exporter.prometheus_runner import Mtail, Prometheus, ScrapeTarget
from livekit_agents_exporter.server_log import PROGRAM_PATH, declared_counters, program_text

GOLDEN = Path(__file__).parent / "golden"

# what every golden log holds (CRI adds one partial record to the unparsed lines)
EXPECTED = {
    c("dispatches_total", agent_name="support"): 9,
    c("dispatches_total", agent_name="sales"): 3,
    c("dispatches_total", agent_name=""): 1,
    c("dispatches_assigned_total", agent_name="support"): 4,
    c("dispatches_assigned_total", agent_name=""): 1,
    c("dispatches_lost_total", agent_name="support", cause="no_capacity"): 2,
    c("dispatches_lost_total", agent_name="support", cause="all_refused"): 1,
    c("dispatches_lost_total", agent_name="support", cause="availability_timeout"): 1,
    c("dispatches_lost_total", agent_name="support", cause="other"): 1,
    c("dispatches_lost_total", agent_name="sales", cause="deadline_exceeded"): 1,
    c("dispatches_lost_total", agent_name="sales", cause="no_worker_registered"): 2,
    c("dispatch_retries_total", agent_name="support", reason="worker_not_available"): 2,
    c("dispatch_retries_total", agent_name="support", reason="worker_closed"): 1,
    c("log_unparsed_lines_total"): 1,
    c("log_heartbeats_total"): 0,
}


def _differences(got: dict, want: dict) -> list[str]:
    keys = sorted(set(got) | set(want))
    return [f"{k}: got {got.get(k)}, want {want.get(k)}" for k in keys if got.get(k) != want.get(k)]


@pytest.mark.parametrize("encoding", ["json", "console"])
def test_both_encodings_count_each_dispatch_once_by_cause(mtail: str, encoding: str) -> None:
    got = one_shot(mtail, GOLDEN / f"livekit-{encoding}.log")
    assert not _differences(got, EXPECTED), _differences(got, EXPECTED)


def test_cri_wrapped_log_counts_the_same_and_flags_the_split_record(mtail: str) -> None:
    got = one_shot(mtail, GOLDEN / "livekit-cri.log")
    want = dict(EXPECTED)
    want[c("log_unparsed_lines_total")] = 2
    assert not _differences(got, want), _differences(got, want)


def test_program_declares_exactly_the_catalogue(mtail: str) -> None:
    declared = declared_counters()
    catalogue = {spec.series_name: spec.all_labels for spec in m.SERVER_LOG_CATALOGUE}
    assert declared == catalogue, f"program {declared} != catalogue {catalogue}"
    assert all(spec.source == "server_log" and spec.kind == "counter"
               for spec in m.SERVER_LOG_CATALOGUE)
    assert not {s.short for s in m.SERVER_LOG_CATALOGUE} & {s.short for s in m.CATALOGUE}
    text = program_text()
    causes = set(re.findall(r'dispatches_lost_total\[\$agent_name\]\["(\w+)"\]', text))
    reasons = set(re.findall(r'dispatch_retries_total\[\$agent_name\]\["(\w+)"\]', text))
    assert causes == set(m.SERVER_LOSS_CAUSES), causes
    assert reasons == set(m.SERVER_RETRY_REASONS), reasons


def test_generated_copies_are_current() -> None:
    from livekit_agents_exporter.server_log import COPIES

    root = Path(__file__).resolve().parents[2]
    for relative in COPIES:
        assert (root / relative).read_text() == program_text(), (
            f"{relative} is stale: run `make generate`")


def test_daemon_follows_a_rotation_and_prometheus_scrapes_it(tmp_path: Path, mtail: str,
                                                            prometheus_binary: str) -> None:
    """A running mtail reads lines as they are appended, keeps counting across a rename-and-
    recreate rotation, and a real Prometheus scrapes the same totals."""
    lines = (GOLDEN / "livekit-json.log").read_text().splitlines(keepends=True)
    half = len(lines) // 2
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    log = log_dir / "livekit.log"
    log.write_text("")
    with Mtail(PROGRAM_PATH, [str(log_dir / "*.log")], binary=mtail,
               workdir=tmp_path / "mtail") as daemon:
        metrics = daemon.url + "/metrics"
        wait_for(lambda: daemon.tailing(log), 15, "mtail to open the log")
        with log.open("a") as f:
            f.writelines(lines[:half])
        first = sum(1 for line in lines[:half] if "assigned job to worker" in line)
        wait_for(lambda: _total(scrape(metrics), "dispatches_assigned_total") == first, 15,
                 f"{first} assignments from the first half")
        os.rename(log, log_dir / "livekit.log.1")  # logrotate's default: rename, then create
        log.write_text("".join(lines[half:]))
        wait_for(lambda: scrape(metrics) == EXPECTED, 20,
                 "the totals of the whole log after the rotation")
        with Prometheus([ScrapeTarget("livekit-server-log", [daemon.target])],
                        binary=prometheus_binary, workdir=tmp_path / "prometheus") as prom:
            lost = wait_for(lambda: prom.query(
                'sum(livekit_agents_server_dispatches_lost_total{job="livekit-server-log"})'),
                30, "Prometheus to scrape mtail")
            assert float(lost[0]["value"][1]) == 8, lost
            by_cause = {r["metric"]["cause"]: float(r["value"][1]) for r in prom.query(
                'sum by (cause) (livekit_agents_server_dispatches_lost_total)')}
            assert by_cause == {"no_capacity": 2, "all_refused": 1, "availability_timeout": 1,
                                "other": 1, "deadline_exceeded": 1, "no_worker_registered": 2}


def _total(counts: dict, name: str) -> float:
    return sum(v for (n, _), v in counts.items() if n == "livekit_agents_server_" + name)


def test_a_replacement_character_blinds_mtail_and_the_filter_prevents_it(
        tmp_path: Path, mtail: str) -> None:
    """google/mtail#698 with the installed binary: after a line holding U+FFFD it counts
    nothing more from that file. Through the filter the same bytes are cleaned, every
    dispatch is counted and the heartbeats show the reader is alive."""
    import subprocess
    import sys

    poisoned = ('{"level":"info","ts":1796119200.5,"logger":"livekit","caller":"rtc/room.go:412",'
                '"msg":"room started","room":"caf\ufffd \xff","roomID":"RM_x"}\n')
    body = (GOLDEN / "livekit-json.log").read_text()
    raw_dir, filtered_dir = tmp_path / "raw", tmp_path / "filtered"
    raw_dir.mkdir()
    filtered_dir.mkdir()
    raw_log, filtered_log = raw_dir / "livekit.log", filtered_dir / "livekit.log"
    raw_log.write_text("")
    filtered_log.write_text("")
    source = tmp_path / "server.log"
    source.write_text("")
    env = dict(os.environ)
    filter_proc = subprocess.Popen(
        [sys.executable, "-m", "livekit_agents_exporter", "server-log", str(source),
         "-o", str(filtered_log), "--heartbeat", "0.2", "--poll", "0.05"], env=env)
    try:
        with Mtail(PROGRAM_PATH, [str(raw_log)], binary=mtail, workdir=tmp_path / "m1") as raw, \
                Mtail(PROGRAM_PATH, [str(filtered_log)], binary=mtail,
                      workdir=tmp_path / "m2") as filtered:
            wait_for(lambda: _total(scrape(filtered.url + "/metrics"),
                                    "log_heartbeats_total") >= 1, 20, "the first heartbeat")
            wait_for(lambda: raw.tailing(raw_log), 15, "mtail to open the raw log")
            for path in (raw_log, source):
                with path.open("ab") as f:
                    f.write(poisoned.encode("utf-8", errors="surrogateescape")
                            .replace("\xff".encode(), b"\xff"))
                    f.write(body.encode())
            wait_for(lambda: _differences(_without_heartbeats(
                scrape(filtered.url + "/metrics")), _without_heartbeats(EXPECTED)) == [], 20,
                "the filtered pipeline to count the whole log")
            beats = _total(scrape(filtered.url + "/metrics"), "log_heartbeats_total")
            wait_for(lambda: _total(scrape(filtered.url + "/metrics"),
                                    "log_heartbeats_total") > beats, 10, "heartbeats to go on")
            # the raw log was written first, so its reader has had longer than the filtered one
            blinded = scrape(raw.url + "/metrics")
            assert _total(blinded, "dispatches_total") == 0, (
                "mtail read past U+FFFD: google/mtail#698 is fixed in this binary; the filter "
                f"is still harmless, but update server-log/README.md (saw {blinded})")
    finally:
        filter_proc.terminate()
        filter_proc.wait(timeout=10)


def _without_heartbeats(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if k != c("log_heartbeats_total")}


ROOT = Path(__file__).resolve().parents[2]


def test_readme_server_log_table_matches_the_catalogue() -> None:
    from livekit_agents_exporter.commands.metrics_doc import (
        SERVER_LOG_TABLE_BEGIN,
        SERVER_LOG_TABLE_END,
        render_server_log_table,
    )

    text = (ROOT / "README.md").read_text()
    embedded = text.split(SERVER_LOG_TABLE_BEGIN, 1)[1].split(SERVER_LOG_TABLE_END, 1)[0].strip()
    assert embedded == render_server_log_table(), "README server-log table is stale: make generate"


def test_readme_pipeline_counts_a_log_as_written(tmp_path: Path, mtail: str) -> None:
    """The README's filter | mtail command, run as written (the path pattern pointed at a
    temporary directory, mtail on an ephemeral loopback port)."""
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", text, re.S)
                 if "livekit-agents-exporter server-log" in b)
    pattern = re.search(r"'(/var/log/pods/[^']+)'", block).group(1)
    pods = tmp_path / "pods"
    command = (block.replace(pattern, f"{pods}/livekit_livekit-server-x/livekit-server/*.log")
               .replace("server-log/livekit-server.mtail",
                        str(ROOT / "server-log" / "livekit-server.mtail"))
               .replace("livekit-agents-exporter server-log",
                        f"{sys.executable} -m livekit_agents_exporter server-log")
               .strip() + " --address 127.0.0.1 --port 0 --logtostderr")
    log_dir = pods / "livekit_livekit-server-x" / "livekit-server"
    log_dir.mkdir(parents=True)
    stderr = tmp_path / "stderr"
    proc = subprocess.Popen(["bash", "-c", command], stderr=stderr.open("wb"),
                            start_new_session=True)
    try:
        listening = wait_for(lambda: re.search(r"Listening on (\S+)", stderr.read_text()), 20,
                             "mtail to listen")
        url = f"http://{listening.group(1)}/metrics"
        wait_for(lambda: scrape(url).get(c("log_heartbeats_total"), 0) >= 1, 20,
                 "the first heartbeat (the filter follows the pattern)")
        # a pod that starts after the pipeline: its file is read from the beginning
        (log_dir / "0.log").write_text((GOLDEN / "livekit-cri.log").read_text())
        want = {k: v for k, v in EXPECTED.items() if k != c("log_heartbeats_total")}
        # the filter joined the split CRI record: counted, and only the truncated line is left
        want[c("dispatches_total", agent_name="support")] += 1
        want[c("dispatches_lost_total", agent_name="support", cause="no_capacity")] += 1
        wait_for(lambda: {k: v for k, v in scrape(url).items()
                          if k != c("log_heartbeats_total")} == want, 20,
                 "the CRI log counted through the pipeline")
    finally:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def test_server_log_readme_documents_what_the_program_matches() -> None:
    """Every message and error text the program matches is in server-log/README.md's tables,
    and every metric the README names is the catalogue's (the OpenTelemetry count connector's
    names get their _total from the Prometheus exporter)."""
    doc = (ROOT / "server-log" / "README.md").read_text()
    text = program_text()
    messages = re.search(r"const DISPATCH_MESSAGE /\(\?:\"msg\":\"\|\\t\)\(\?:(.*?)\)\(\?:", text)
    assert messages, "DISPATCH_MESSAGE not found in the program"
    for message in messages.group(1).split("|"):
        assert f"`{message}`" in doc, message
    for error in re.findall(r'/"error": \?"\(\?:(.*?)\)"/|/"error": \?"(.*?)"/', text):
        for alternative in "|".join(e for e in error if e).split("|"):
            shown = alternative.replace(r"\(", "(").replace(r"\)", ")").replace(r"\d+", "N")
            assert f"`{shown}`" in doc, shown
    known = {s.series_name for s in m.SERVER_LOG_CATALOGUE}
    for name in set(re.findall(r"\blivekit_agents_server_\w+", doc)):
        assert name in known or f"{name}_total" in known, name
