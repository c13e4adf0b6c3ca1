"""Regenerates every committed artifact from its generator: ``make generate``.

The README metric table, the rendered alert rules and the dashboard JSON are all
outputs; tests fail when the committed copies drift from what this writes.
"""

from __future__ import annotations

from pathlib import Path

from .commands.metrics_doc import TABLE_BEGIN, TABLE_END, render_table

ROOT = Path(__file__).resolve().parents[2]


def update_readme(readme: Path = ROOT / "README.md") -> None:
    text = readme.read_text()
    head, rest = text.split(TABLE_BEGIN, 1)
    _, tail = rest.split(TABLE_END, 1)
    readme.write_text(f"{head}{TABLE_BEGIN}\n{render_table()}\n{TABLE_END}{tail}")


def main() -> None:
    from .rules import write_artifacts

    from .dashboard import COMMITTED_PATH, render_json
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
