"""The recipes of the user docs: every fenced shell or Python block in README.md and docs/*.md.

An HTML comment on the line right above a fence tells the harness about that block (stack several if needed):

    <!-- recipe: skip (needs a GPU) -->            not run; the reason is required, and pytest -rs shows it
    <!-- recipe: given irv2.onnx, server -->       run after preparing these (``GIVENS`` in givens.py)

Blocks in any other language (json, yaml, ini, dockerfile, or output with no language) are not recipes, nor
is indented code (docs/performance.md's measurement commands, which take a quiet machine and minutes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = (
    "README.md",
    "docs/batch.md",
    "docs/deploy.md",
    "docs/evaluate.md",
    "docs/finetune.md",
    "docs/migrating.md",
    "docs/performance.md",
)
LANGUAGES = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
_DIRECTIVE = re.compile(r"<!--\s*recipe:\s*(?P<body>.*?)\s*-->")
_SKIP = re.compile(r"skip\s*\((?P<reason>[^()]*(?:\([^()]*\)[^()]*)*)\)")
_GIVEN = re.compile(r"given\s+(?P<names>.+)")
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<language>[\w+-]*)")
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*$")
# A Python line that says what it prints: ``print(features.shape)  # prints (2, 1536)``.
_PRINTS = re.compile(r"^\s*print\(.*\)\s+#\s*prints\s+(?P<value>.+?)\s*$")


@dataclass(frozen=True)
class Recipe:
    doc: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    section: str  # the heading above it
    language: str  # "bash" or "python"
    code: str
    skip: str | None = None
    given: tuple[str, ...] = ()
    id: str = field(default="", compare=False)

    @property
    def prints(self) -> list[str]:
        """What the recipe says it prints (``# prints VALUE`` after a ``print(...)``), in order."""
        if self.language != "python":
            return []
        return [match.group("value") for line in self.code.splitlines() if (match := _PRINTS.match(line))]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.split(":")[0].lower().replace("`", "")).strip("-")


def parse(doc: str, text: str) -> tuple[list[Recipe], list[str]]:
    """The recipes of one document, and the problems found in its recipe comments (each naming its line)."""
    recipes: list[Recipe] = []
    problems: list[str] = []
    lines = text.splitlines()
    section, per_section = "top", {}
    pending: list[tuple[int, str]] = []  # recipe comments waiting for their fence
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        directive = _DIRECTIVE.fullmatch(line.strip())
        if directive:
            pending.append((i + 1, directive.group("body")))
            i += 1
            continue
        if pending and not fence:
            problems += [f"{doc}:{n}: a recipe comment must sit right above a fence" for n, _ in pending]
            pending = []
        heading = _HEADING.match(line)
        if heading:
            section = heading.group("title")
        if not fence:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith(fence.group("fence")):
            end += 1
        language = LANGUAGES.get(fence.group("language").lower())
        skip, given = None, []
        for n, body in pending:
            if (match := _SKIP.fullmatch(body)) and match.group("reason").strip():
                skip = match.group("reason").strip()
            elif match := _GIVEN.fullmatch(body):
                given += [name.strip() for name in match.group("names").split(",") if name.strip()]
            else:
                problems.append(f"{doc}:{n}: not a recipe comment: {body!r} (skip (REASON) or given A, B)")
        if pending and language is None:
            problems.append(f"{doc}:{i + 1}: a recipe comment above a {fence.group('language') or 'plain'} block")
        pending = []
        if language is not None:
            slug = _slug(section)
            per_section[slug] = per_section.get(slug, 0) + 1
            number = per_section[slug]
            recipe_id = f"{doc}::{slug}" + (f"-{number}" if number > 1 else "")
            code = "\n".join(lines[i + 1 : end]) + "\n"
            recipes.append(Recipe(doc, i + 1, section, language, code, skip, tuple(given), id=recipe_id))
        i = end + 1
    problems += [f"{doc}:{n}: a recipe comment at the end of the file" for n, _ in pending]
    return recipes, problems


def all_recipes() -> tuple[list[Recipe], list[str]]:
    recipes, problems = [], []
    for doc in DOCS:
        found, wrong = parse(doc, (ROOT / doc).read_text(encoding="utf-8"))
        recipes += found
        problems += wrong
    return recipes, problems
