"""The link between a worker and its endpoint process: small framed messages on a socketpair.

Each frame is a 1-byte kind, a 4-byte big-endian length and a payload. Control payloads
are JSON; a snapshot carries a JSON header line then the rendered bytes. The format is
private to the two ends, which always come from the same installed package.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

# endpoint -> worker
READY = b"R"  # {"port": int}: listening
START_FAILED = b"F"  # {"message": str}: could not bind (or configure); the process exits
WANT = b"W"  # {"id": int, "accept": str, "names": [str]}: render a snapshot
ERROR = b"E"  # {"component": str, "detail": str}: count and log an endpoint failure
LOG = b"L"  # {"message": str}: worth a line in the worker's log (a reloaded web config)
# worker -> endpoint
SNAPSHOT = b"S"  # header {"id", "content_type"} + b"\n" + body (or {"id", "error"})

_HEAD = struct.Struct(">cI")
MAX_FRAME = 64 << 20  # a worker's exposition is ~30 KB; anything near this is a bug


class LinkClosed(EOFError):
    """The other end went away."""


def send(sock: socket.socket, kind: bytes, payload: dict[str, Any], body: bytes = b"") -> None:
    data = json.dumps(payload, separators=(",", ":")).encode()
    if kind == SNAPSHOT:
        data += b"\n" + body
    sock.sendall(_HEAD.pack(kind, len(data)) + data)


def recv(sock: socket.socket) -> tuple[bytes, dict[str, Any], bytes]:
    """(kind, payload, body) of the next frame; ``LinkClosed`` at EOF."""
    kind, length = _HEAD.unpack(_exactly(sock, _HEAD.size))
    if length > MAX_FRAME:
        raise LinkClosed(f"frame of {length} bytes")
    return decode(kind, _exactly(sock, length))


def decode(kind: bytes, data: bytes) -> tuple[bytes, dict[str, Any], bytes]:
    body = b""
    if kind == SNAPSHOT:
        data, _, body = data.partition(b"\n")
    return kind, json.loads(data), body


def header(data: bytes) -> tuple[bytes, int]:
    kind, length = _HEAD.unpack(data)
    return kind, length


HEADER_SIZE = _HEAD.size


def _exactly(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise LinkClosed("the other end closed the link")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
