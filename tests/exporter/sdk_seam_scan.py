"""The scan behind ``test_sdk_seam.py``, run as a script in an interpreter of its own.

CPython 3.11's ``ast.parse`` keeps its recursion counter in interpreter-wide state: a
traceback formatted on another thread at the same moment (3.11's tracebacks parse the
failing line to place their carets) makes it fail with "AST constructor recursion depth
mismatch" (python/cpython#106905). The test process has SDK threads logging job failures;
a fresh interpreter has none, so the scan runs here and prints its findings as JSON.
"""

from __future__ import annotations

import ast
import json
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
    return [f"{path.relative_to(REPO)}:{line}: {code}"
            for line, code, _ in accesses(path, sdk_names)]



def main() -> None:
    sdk_names = sdk_private_names()
    print(json.dumps({
        "sdk_names": len(sdk_names),
        "door_hits": private_sdk_accesses(THE_DOOR, sdk_names),
        "offenders": [hit for path in SCANNED if path != THE_DOOR
                      for hit in private_sdk_accesses(path, sdk_names)],
    }))


if __name__ == "__main__":
    main()
