"""The README's worker examples are the files in examples/ that the user-script suite runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARKER = re.compile(r"<!-- example: (\S+) -->\n```python\n(.*?)```", re.S)


def test_readme_examples_are_the_example_files_verbatim():
    found = MARKER.findall(README.read_text())
    assert {path for path, _ in found} == {"examples/agent_server.py",
                                           "examples/run_app_options.py"}, found
    for path, block in found:
        assert block == (ROOT / path).read_text(), (
            f"README's block for {path} differs from the file: copy the file into the README")


def test_examples_call_instrument_at_module_level_as_the_readme_says():
    for path in ("examples/agent_server.py", "examples/run_app_options.py"):
        assert re.search(r"^instrument\(\w+\)", (ROOT / path).read_text(), re.M), path
