"""Every dotted ``irv2.`` name that the README and the docs mention in their prose (inline code, outside the
recipe blocks, which run) resolves: a user who types it finds it."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(`{3,}|~{3,})")
_SPAN = re.compile(r"`([^`\n]+)`")
_NAME = re.compile(r"\birv2(?:\.[A-Za-z_]\w*)+")
# Names of files and metadata keys irv2 writes, which read like code names: each must be a string (or bytes) in
# irv2's source, so that the list cannot outlive them.
FILE_NAMES = {"irv2.json", "irv2.manifest", "irv2.summary", "irv2.job", "irv2.onnx", "irv2.pt"}


def prose_names() -> dict[str, str]:
    """Each dotted name of the docs' inline code outside fenced blocks, with where it is first mentioned."""
    found: dict[str, str] = {}
    for doc in DOCS:
        fenced = False
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if _FENCE.match(line.strip()):
                fenced = not fenced
                continue
            if fenced:
                continue
            for span in _SPAN.findall(line):
                for name in _NAME.findall(span):
                    found.setdefault(name, f"{doc.relative_to(ROOT)}:{number}")
    return found


NAMES = prose_names()


def resolve(name: str) -> object:
    """The object ``name`` names: the longest importable module prefix, then attributes."""
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise ImportError(name)


def test_the_docs_mention_names():
    assert len(NAMES) > 20 and "irv2.load" in NAMES and "irv2.tfhub" in NAMES


@pytest.mark.parametrize("name", sorted(set(NAMES) - FILE_NAMES))
def test_each_name_resolves(name):
    try:
        resolve(name)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"{NAMES[name]}: `{name}` does not resolve ({error})")


def test_file_names_are_what_irv2_writes():
    strings = {
        node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
        for path in (ROOT / "src" / "irv2").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))
    }
    mentioned = FILE_NAMES & set(NAMES)
    assert mentioned and all(any(name in string for string in strings) for name in mentioned), mentioned
