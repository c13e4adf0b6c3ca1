"""``python -m livekit_agents_exporter.rules [DIR]``: regenerate the committed alert files.

DIR defaults to the repository's ``alerts/`` directory (a source checkout).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .render import write_artifacts

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "alerts"


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv else DEFAULT_DIR
    if not directory.is_dir():
        print(f"{directory}: not a directory", file=sys.stderr)
        return 2
    for path in write_artifacts(directory):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
