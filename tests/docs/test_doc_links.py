"""Every link between the project's documents, and every document a code comment names,
exists in the repository: a pointer to a file that is not shipped sends the next
maintainer nowhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", ".venv-extra", ".pytest_cache", ".mypy_cache", ".ruff_cache",
             "node_modules", "tmp", "build", "dist", "__pycache__"}
CODE_DIRS = ("exporter", "tests", "benchmarks", "examples", "server-log")
LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+")
# a repository path to a document: at least one directory, ending in .md
DOC_MENTION = re.compile(r"(?<![\w./-])((?:\.\./|\./)?[A-Za-z0-9_-]+(?:/[A-Za-z0-9_.-]+)*/"
                         r"[A-Za-z0-9_.-]+\.md)\b")


def _files(suffix: str, under: tuple[str, ...] | None = None) -> list[Path]:
    roots = [ROOT / d for d in under] if under else [ROOT]
    return sorted(p for r in roots if r.exists() for p in r.rglob(f"*{suffix}")
                  if not SKIP_DIRS & set(p.relative_to(ROOT).parts[:-1]))


def _code_and_config() -> list[Path]:
    """The code, and the configuration whose comments point to documents too."""
    config = [p for suffix in (".yaml", ".yml", ".toml", ".mtail") for p in _files(suffix)]
    extra = [p for p in (ROOT / "Makefile", ROOT / ".ci" / "run") if p.exists()]
    return [*_files(".py", CODE_DIRS), *config, *extra]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def test_the_scan_sees_the_documents_and_the_code():
    docs = {p.relative_to(ROOT).as_posix() for p in _files(".md")}
    assert {"README.md", "benchmarks/README.md", "docs/SDK_INTERNALS.md"} <= docs, docs
    assert len(_files(".py", CODE_DIRS)) > 50


def test_relative_links_in_documents_point_to_files_that_exist():
    broken = []
    for doc in _files(".md"):
        for target in LINK.findall(doc.read_text()):
            if URL.match(target) or target.startswith(("mailto:", "<")):
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            where = f"{doc.relative_to(ROOT)} -> {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{where} (no heading with that anchor)")
            elif ROOT not in dest.parents and dest != ROOT:
                broken.append(f"{where} (outside the repository)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_documents_named_in_code_exist():
    """A ``docs/<name>.md`` (any ``<dir>/<name>.md``) in a comment or docstring is a path,
    relative to the root or to the file; an upstream project's document is cited by URL."""
    missing = []
    for source in _code_and_config():
        for n, line in enumerate(source.read_text().splitlines(), 1):
            for mention in DOC_MENTION.findall(URL.sub("", line)):
                if not ((ROOT / mention).exists() or (source.parent / mention).exists()):
                    missing.append(f"{source.relative_to(ROOT)}:{n}: {mention}")
    assert not missing, ("code names documents that are not in the repository (point to the "
                         "project's own doc, or cite an upstream one by URL):\n"
                         + "\n".join(missing))


def test_documents_name_no_path_outside_the_project():
    """The project's documents stand on their own: no notes of the machine they were
    written on."""
    leaks = []
    for doc in [*_files(".md"), *_code_and_config()]:
        if doc == Path(__file__).resolve():
            continue
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            if re.search(r"DOMAIN\.md|(?<![\w.])/work/|STYLE\.md", line):
                leaks.append(f"{doc.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not leaks, "\n".join(leaks)


SECTION_MENTION = re.compile(r"([A-Za-z0-9_./-]+\.md)`*,\s+\"([^\"]+)\"")


def test_sections_named_next_to_a_document_exist():
    """``docs/<name>.md, "Design"`` names a heading of that document: it must still start so."""
    missing = []
    for source in [*_files(".md"), *_files(".py", CODE_DIRS)]:
        text = re.sub(r"\s+", " ", source.read_text())
        for path, section in SECTION_MENTION.findall(text):
            doc = next((d for d in (ROOT / path, source.parent / path) if d.exists()), None)
            if doc is None:
                continue  # a missing document is test_documents_named_in_code_exist's
            headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", doc.read_text(), re.M)
            if not any(h.startswith(section) for h in headings):
                missing.append(f"{source.relative_to(ROOT)}: {path}, \"{section}\"")
    assert not missing, "sections that are not headings of the document named:\n" + \
        "\n".join(missing)
