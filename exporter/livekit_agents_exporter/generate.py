"""Regenerates every committed artifact from its generator: ``make generate``.

The README metric table, the rendered alert rules and the dashboard JSON are all
outputs; tests fail when the committed copies drift from what this writes.
"""

from __future__ import annotations

from pathlib import Path

from .commands.metrics_doc import (
    SERVER_LOG_TABLE_BEGIN,
    SERVER_LOG_TABLE_END,
    TABLE_BEGIN,
    TABLE_END,
    render_server_log_table,
    render_table,
)

ROOT = Path(__file__).resolve().parents[2]


def _replace_between(text: str, begin: str, end: str, body: str) -> str:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def update_readme(readme: Path = ROOT / "README.md") -> None:
    text = _replace_between(readme.read_text(), TABLE_BEGIN, TABLE_END, render_table())
    if SERVER_LOG_TABLE_BEGIN in text:
        text = _replace_between(text, SERVER_LOG_TABLE_BEGIN, SERVER_LOG_TABLE_END,
                                render_server_log_table())
    readme.write_text(text)


def main() -> None:
    from .dashboard import COMMITTED_PATH, render_json
    from .rules import write_artifacts
    from .server_log import write_copies

    update_readme()
    for path in write_copies(ROOT):
        print(f"regenerated {path.relative_to(ROOT)}")
    for path in write_artifacts(ROOT / "alerts"):
        print(f"regenerated {path.relative_to(ROOT)}")
    dashboard = ROOT / COMMITTED_PATH
    dashboard.write_text(render_json())
    print(f"regenerated {COMMITTED_PATH}")
    print("regenerated README metric table")


if __name__ == "__main__":
    main()
