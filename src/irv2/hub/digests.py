"""What a local weights source is, by content: the sha256 of the files it is made of, each remembered per
(path, size, modification time) in ``$IRV2_HOME/digests.json``, so that a file is read once and a later load
knows it from a ``stat``.

This is how ``irv2.load`` finds the engine file it prepared for these weights before, without importing torch
or reading the weights: the key of a source is its files' digests, not the network's.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..atomic import write_text
from .cache import irv2_home

_MEMO_FILE = "digests.json"
_MEMO_LIMIT = 512  # files remembered; the oldest are forgotten first


def source_files(path: Path) -> list[Path]:
    """The files a weights source is made of: every file under a folder; a V2 checkpoint prefix's index and
    data shards; else the file itself. Empty when there is nothing to read."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.endswith((".lock", ".part")))
    if path.is_file():
        return [path]
    index = Path(f"{path}.index")
    if index.is_file():
        return [index, *sorted(index.parent.glob(f"{glob_escape(path.name)}.data-*"))]
    return []


def source_digest(path: Path) -> str | None:
    """The sha256 of the files of the source at ``path`` (their names relative to it, sizes and contents), or
    None when there are none or one cannot be read."""
    files = source_files(path)
    if not files:
        return None
    memo = _read_memo()
    digest = hashlib.sha256()
    changed = False
    base = path if path.is_dir() else path.parent
    try:
        for file in files:
            stat = file.stat()
            key = str(file.resolve())
            known = memo.get(key)
            if known and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
                file_digest = known[2]
            else:
                file_digest = file_sha256(file)
                memo[key] = [stat.st_size, stat.st_mtime_ns, file_digest]
                changed = True
            digest.update(f"{file.relative_to(base)} {stat.st_size} {file_digest}\n".encode())
    except OSError:
        return None
    if changed:
        _write_memo(memo)
    return digest.hexdigest()


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def file_sha256(path: Path) -> str:
    """The sha256 of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_memo() -> dict[str, list]:
    try:
        memo = json.loads((irv2_home() / _MEMO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _write_memo(memo: dict[str, list]) -> None:
    """Keep the newest entries; a memo that cannot be written only costs a re-read next time."""
    entries = list(memo.items())[-_MEMO_LIMIT:]
    try:
        os.makedirs(irv2_home(), exist_ok=True)
        write_text(irv2_home() / _MEMO_FILE, json.dumps(dict(entries), indent=0) + "\n")
    except OSError:
        pass
