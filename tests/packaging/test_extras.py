"""The extras: pyproject.toml, the code's install hints and the README say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

from livekit_agents_exporter import extras
from livekit_agents_exporter.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
WORKER_CORE = {"prometheus-client", "psutil", "pyyaml", "aiohttp"}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group(0).lower()


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("### What a worker installs")
    end = text.index("\n#", start + 1)
    return text[start:end]


def test_the_core_dependencies_are_what_every_worker_needs_and_no_more() -> None:
    core = {_name(r) for r in PROJECT["dependencies"]}
    assert core == WORKER_CORE, f"core dependencies {sorted(core)}"


def test_each_extra_the_code_names_exists_and_brings_its_package() -> None:
    optional = PROJECT["optional-dependencies"]
    for extra, (_module, distribution) in extras.EXTRAS.items():
        assert extra in optional, f"extras.py names [{extra}], pyproject.toml has no such extra"
        names = {_name(r) for r in optional[extra]}
        assert distribution in names, f"[{extra}] installs {sorted(names)}, not {distribution}"


def test_the_readme_section_names_every_extra_and_every_command() -> None:
    section = _section()
    assert extras.install_command("livekit") in (ROOT / "README.md").read_text()
    assert extras.install_command("basic-auth") in section
    for extra in extras.EXTRAS:
        assert f"[{extra}]" in section or f",{extra}]" in section, f"[{extra}] not in the README"
    table = section[section.index("| to run |"):]
    missing = [name for name in COMMANDS if f"`{name}`" not in table
               and f"livekit-agents-exporter {name}`" not in table]
    assert missing == [], f"commands missing from the README's table: {missing}"
