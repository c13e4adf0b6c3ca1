"""livekit-server's dispatch log as metrics: the mtail program and the log filter.

The program (``livekit-server.mtail``) ships inside the package so the demo and an installed
copy find it; ``make generate`` writes the copies under ``server-log/`` and the Kubernetes
example. Its metric names are the catalogue's ``SERVER_LOG_CATALOGUE``; ``declared_counters``
reads them back so a test can check the two agree.
"""

from __future__ import annotations

import re
from pathlib import Path

PROGRAM_NAME = "livekit-server.mtail"
PROGRAM_PATH = Path(__file__).with_name(PROGRAM_NAME)
# where `make generate` copies the program, relative to the repository root
COPIES = (Path("server-log") / PROGRAM_NAME,
          Path("examples/kubernetes/server-log") / PROGRAM_NAME)

_DECLARATION = re.compile(r"^counter (\w+)(?: by ([\w, ]+))?$", re.M)


def program_text() -> str:
    return PROGRAM_PATH.read_text(encoding="utf-8")


def declared_counters(text: str | None = None) -> dict[str, tuple[str, ...]]:
    """Counter name -> its labels, as the mtail program declares them."""
    found = _DECLARATION.findall(program_text() if text is None else text)
    return {name: tuple(label.strip() for label in labels.split(",")) if labels else ()
            for name, labels in found}


def write_copies(root: Path) -> list[Path]:
    written = []
    for relative in COPIES:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(program_text(), encoding="utf-8")
        written.append(path)
    return written
