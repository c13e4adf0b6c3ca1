"""Regenerates every committed artifact from its generator: ``make generate``.

    python -m livekit_agents_exporter.generate [--root DIR]

The README metric tables, the rendered alert rules, the mtail program's copies and the
dashboard JSON are all outputs; tests fail when the committed copies drift from what
this writes. ``DIR`` is the source checkout to write into (default: the current
directory, where ``make generate`` runs); nothing here guesses it from the installed
package's location.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .commands.metrics_doc import (
    SERVER_LOG_TABLE_BEGIN,
    SERVER_LOG_TABLE_END,
    TABLE_BEGIN,
    TABLE_END,
    render_server_log_table,
    render_table,
)

REGENERATE = "make generate"  # what every drift message tells the reader to run
MIXIN_DOC = "docs/MIXIN_CONFIG.md"


def _replace_between(text: str, begin: str, end: str, body: str) -> str:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def update_readme(readme: Path) -> None:
    text = _replace_between(readme.read_text(), TABLE_BEGIN, TABLE_END, render_table())
    if SERVER_LOG_TABLE_BEGIN in text:
        text = _replace_between(text, SERVER_LOG_TABLE_BEGIN, SERVER_LOG_TABLE_END,
                                render_server_log_table())
    readme.write_text(text)


def update_mixin_doc(doc: Path) -> None:
    """The key tables of docs/MIXIN_CONFIG.md, from the configuration's schema."""
    from .rules.config import (
        ALERTS_TABLE_BEGIN,
        ALERTS_TABLE_END,
        KEYS_TABLE_BEGIN,
        KEYS_TABLE_END,
        alerts_table,
        keys_table,
    )

    text = _replace_between(doc.read_text(), KEYS_TABLE_BEGIN, KEYS_TABLE_END, keys_table())
    doc.write_text(_replace_between(text, ALERTS_TABLE_BEGIN, ALERTS_TABLE_END, alerts_table()))


def _checkout(root: Path) -> str | None:
    """Why ``root`` is not a source checkout of this project, or None when it is."""
    readme = root / "README.md"
    if not readme.is_file() or TABLE_BEGIN not in readme.read_text(errors="replace"):
        return (f"{root.resolve()}: no README.md with the metric table markers "
                "(run from the checkout)")
    if not (root / "alerts").is_dir():
        return f"{root.resolve()}: no alerts/ directory (run from the checkout)"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livekit_agents_exporter.generate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="the source checkout to write into (default: the current directory)")
    root: Path = parser.parse_args(argv).root
    problem = _checkout(root)
    if problem:
        print(problem, file=sys.stderr)
        return 2

    from .dashboard import COMMITTED_PATH, render_json
    from .rules import write_artifacts
    from .server_log import write_copies

    update_readme(root / "README.md")
    update_mixin_doc(root / MIXIN_DOC)
    print(f"regenerated the key tables of {MIXIN_DOC}")
    for path in write_copies(root):
        print(f"regenerated {path.relative_to(root)}")
    for path in write_artifacts(root / "alerts"):
        print(f"regenerated {path.relative_to(root)}")
    (root / COMMITTED_PATH).write_text(render_json())
    print(f"regenerated {COMMITTED_PATH}")
    print("regenerated README metric table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
