"""The simulator's dispatch log: the lines livekit-server writes, in its logger's encodings.

livekit-server logs through livekit/protocol's logger, a zap logger: ``logging.json: true``
selects zap's production JSON encoder, otherwise zap's development console encoder
(``logger/logger.go`` ``FromZapLogger``, ``logger/zaputil/zaputil.go``). The simulator writes
the same lines for the same events (messages, levels, logger names, field names and order as
in ``pkg/agent/client.go`` ``LaunchJob`` and ``pkg/service/agentservice.go`` ``JobRequest``;
server-log/README.md cites each), so the mtail program can be tested end to end.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Literal, TextIO

Encoding = Literal["json", "console"]
ENCODINGS: tuple[Encoding, ...] = ("json", "console")

# the logger names: the package logger of pkg/agent is "livekit" (config.InitLoggerFromConfig),
# AgentHandler's is GetLogger().WithComponent("agents")
ROOM_LOGGER = "livekit"
AGENT_LOGGER = "livekit.agents"
# zap's short caller (file:line of the call) at livekit-server v1.13.5
CALLER_NOT_DISPATCHING = "agent/client.go:150"
CALLER_SEND_FAILED = "agent/client.go:181"
CALLER_NO_WORKER = "service/agentservice.go:415"
CALLER_ASSIGNED = "service/agentservice.go:425"
CALLER_ASSIGN_FAILED = "service/agentservice.go:441"

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def zap_string(value: str) -> str:
    """A JSON string as zap's encoder writes it: short escapes for quote, backslash, \\n, \\r
    and \\t, ``\\u00XX`` for other control characters, everything else raw."""
    out = ['"']
    for char in value:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return zap_string(str(value))


def format_line(encoding: Encoding, level: str, logger: str, caller: str, message: str,
                fields: list[tuple[str, Any]], ts: float) -> str:
    """One log line (with its newline) in the given encoding."""
    if encoding == "json":
        head = (f'{{"level":"{level}","ts":{ts!r},"logger":{zap_string(logger)},'
                f'"caller":{zap_string(caller)},"msg":{zap_string(message)}')
        return head + "".join(f",{zap_string(k)}:{_value(v)}" for k, v in fields) + "}\n"
    when = datetime.fromtimestamp(ts, timezone.utc)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    line = "\t".join((stamp, level.upper(), logger, caller, message))
    if fields:
        line += "\t{" + ", ".join(f"{zap_string(k)}: {_value(v)}" for k, v in fields) + "}"
    return line + "\n"


class ServerLog:
    """Writes the dispatch lines of one simulated livekit-server to a text stream."""

    def __init__(self, stream: TextIO, encoding: Encoding = "json", api_key: str = "devkey",
                 clock: Callable[[], float] = time.time, close: bool = False) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"server log encoding must be one of {', '.join(ENCODINGS)}, "
                             f"got {encoding!r}")
        self.stream, self.encoding, self.api_key = stream, encoding, api_key
        self._clock, self._close = clock, close
        self._lock = threading.Lock()
        self.lines = 0

    @classmethod
    def open(cls, path: str, encoding: Encoding = "json", api_key: str = "devkey") -> ServerLog:
        """``-`` is stdout; a path is appended to (so a tailing reader sees every line)."""
        if path == "-":
            return cls(sys.stdout, encoding, api_key)
        try:
            stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write the server log {path}: {exc.strerror}") \
                from None
        return cls(stream, encoding, api_key, close=True)

    def close(self) -> None:
        if self._close:
            self.stream.close()

    def _write(self, level: str, logger: str, caller: str, message: str,
               fields: list[tuple[str, Any]]) -> None:
        line = format_line(self.encoding, level, logger, caller, message, fields, self._clock())
        with self._lock:
            self.stream.write(line)
            self.stream.flush()
            self.lines += 1

    @staticmethod
    def _job_fields(job: Any, worker_id: str | None = None) -> list[tuple[str, Any]]:
        # JobRequest: WithUnlikelyValues(jobID, namespace, agentName, jobType), then room,
        # roomID, then workerID once a worker is selected
        fields: list[tuple[str, Any]] = [
            ("jobID", job.id), ("namespace", job.namespace), ("agentName", job.agent_name),
            ("jobType", _job_type(job.type)), ("room", job.room.name), ("roomID", job.room.sid)]
        if worker_id is not None:
            fields.append(("workerID", worker_id))
        return fields

    # -- room side: agentClient.LaunchJob (pkg/agent/client.go) ------------------------
    def not_dispatching(self, job: Any) -> None:
        self._write("info", ROOM_LOGGER, CALLER_NOT_DISPATCHING,
                    "not dispatching agent job since no worker is available",
                    [("agentName", job.agent_name), ("jobType", _job_type(job.type)),
                     ("room", job.room.name), ("roomID", job.room.sid)])

    def send_failed(self, job: Any, error: str) -> None:
        self._write("info", ROOM_LOGGER, CALLER_SEND_FAILED, "failed to send job request",
                    [("error", error), ("namespace", job.namespace),
                     ("jobType", _job_type(job.type)), ("agentName", job.agent_name)])

    # -- agent side: AgentHandler.JobRequest (pkg/service/agentservice.go) ---------------
    def no_worker(self, job: Any, error: str) -> None:
        self._write("warn", AGENT_LOGGER, CALLER_NO_WORKER, "no worker available to handle job",
                    [*self._job_fields(job), ("error", error)])

    def assigned(self, job: Any, worker_id: str) -> None:
        self._write("info", AGENT_LOGGER, CALLER_ASSIGNED, "assigned job to worker",
                    [*self._job_fields(job, worker_id), ("apiKey", self.api_key)])

    def assign_failed(self, job: Any, worker_id: str, error: str, retry: bool) -> None:
        self._write("warn", AGENT_LOGGER, CALLER_ASSIGN_FAILED, "failed to assign job to worker",
                    [*self._job_fields(job, worker_id), ("retry", retry), ("error", error)])


def _job_type(value: int) -> str:
    from livekit.protocol import agent as proto

    return str(proto.JobType.Name(value))
