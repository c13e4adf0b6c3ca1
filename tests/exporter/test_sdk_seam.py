"""``sdk.py`` is the only module that reaches livekit-agents' private names.

Read statically: every private name the installed SDK defines (methods, attributes,
module-level names starting with one underscore) is collected from its sources, then
every module of the exporter package (the demo included) and the benchmark worker is
scanned for an access to one of them on anything but its own ``self``/``cls``:
``obj._name``, ``getattr(obj, "_name")`` (and ``setattr``/``hasattr``/``delattr``), or
``from livekit... import _name``. A release that moves a name then costs an edit in one
file, and this test keeps it that way.

Names are not types: a short private name the package defines for itself as well
(``_run``, ``_lock``, ...) is left out, unless ``sdk.py`` reaches it on an SDK object,
which makes it an SDK name wherever it appears.
"""

from __future__ import annotations

import ast
from pathlib import Path

import livekit.agents

import livekit_agents_exporter

PACKAGE = Path(livekit_agents_exporter.__file__).parent
REPO = PACKAGE.parent.parent
SDK_SOURCES = Path(livekit.agents.__file__).parent
THE_DOOR = PACKAGE / "sdk.py"
SCANNED = sorted(PACKAGE.rglob("*.py")) + [REPO / "benchmarks" / "bench_worker.py",
                                           REPO / "benchmarks" / "harness.py",
                                           REPO / "benchmarks" / "micro.py"]
NAME_FUNCTIONS = {"getattr", "setattr", "hasattr", "delattr"}
# accesses to another library's private name that happens to be an SDK name too
NOT_THE_SDK = {
    "simulator/server.py": {"site._server"},  # aiohttp's TCPSite: the simulator's own server
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def defined_private_names(paths: list[Path]) -> set[str]:
    """Private names defined there: ``def _x``, ``class _X``, ``_X = ...``, ``obj._x = ...``."""
    names: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                candidate = node.name
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                candidate = node.id
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                candidate = node.attr
            else:
                continue
            if _private(candidate):
                names.add(candidate)
    return names


def sdk_private_names() -> set[str]:
    """The SDK's private names, less the package's own homonyms that sdk.py does not reach."""
    sdk_names = defined_private_names(sorted(SDK_SOURCES.rglob("*.py")))
    own = defined_private_names([p for p in PACKAGE.rglob("*.py") if p != THE_DOOR])
    reached = {name for _, _, name in accesses(THE_DOOR, sdk_names)}
    return (sdk_names - own) | reached


def accesses(path: Path, sdk_names: set[str]) -> list[tuple[int, str, str]]:
    """``(line, code, name)`` for every reach of an SDK private name in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute) and node.attr in sdk_names:
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.append((line, ast.unparse(node), node.attr))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in NAME_FUNCTIONS and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and name.value in sdk_names:
                found.append((line, ast.unparse(node), name.value))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("livekit"):
            module = node.module or ""
            for alias in node.names:
                if _private(alias.name) or any(_private(p) for p in module.split(".")):
                    found.append((line, f"from {module} import {alias.name}", alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("livekit") and any(
                        _private(p) for p in alias.name.split(".")):
                    found.append((line, f"import {alias.name}", alias.name))
    return found


def private_sdk_accesses(path: Path, sdk_names: set[str]) -> list[str]:
    """``file:line: code`` for every reach of an SDK private name in ``path``."""
    allowed = NOT_THE_SDK.get(path.relative_to(PACKAGE).as_posix()
                              if path.is_relative_to(PACKAGE) else "", set())
    return [f"{path.relative_to(REPO)}:{line}: {code}"
            for line, code, _ in accesses(path, sdk_names) if code not in allowed]


def test_the_scan_finds_what_sdk_py_reaches():
    """The scanner is not blind: sdk.py itself is full of hits (and exempt from the rule)."""
    hits = private_sdk_accesses(THE_DOOR, sdk_private_names())
    for expected in ("self.worker._proc_pool", "self.worker._closed", "self.worker._draining"):
        assert any(h.endswith(expected) for h in hits), (expected, hits)


def test_no_module_but_sdk_py_reaches_a_private_sdk_name():
    sdk_names = sdk_private_names()
    assert len(sdk_names) > 200, f"only {len(sdk_names)} private SDK names found"
    offenders = [hit for path in SCANNED if path != THE_DOOR
                 for hit in private_sdk_accesses(path, sdk_names)]
    assert offenders == [], "private livekit-agents names outside sdk.py:\n" + "\n".join(offenders)
