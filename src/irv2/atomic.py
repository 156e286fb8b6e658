"""Writing files and folders so that a reader sees the old version or the whole new one, never a part.

Everything irv2 writes for later (modules, downloads' records, batch parts, checkpoints, exports, engine
caches) goes through here: the content is written under a hidden temporary name beside its destination
(``.NAME.PID-RANDOM.tmp``: Parquet readers, Spark and irv2's own merge skip such names), flushed to stable
storage, then renamed into place in one step. A crash, ``kill -9`` or a full disk at any point leaves either
the previous file or none, plus at worst a ``.tmp`` that nothing trusts. A full disk (or quota) becomes a
:class:`~irv2.errors.DiskFullError` naming the file, which callers complete with what their work kept and how
to resume it (:mod:`irv2.disk_full`).

>>> with atomic_write("metrics.json", "w", encoding="utf-8") as f:
...     json.dump(metrics, f)
>>> with atomic_path("export.onnx") as scratch:      # for writers that want a path: a file or a folder
...     write_onnx(model, scratch)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .disk_full import is_disk_full, unchanged
from .errors import DiskFullError

TEMPORARY_SUFFIX = ".tmp"


def temporary_name(target: str | os.PathLike[str]) -> Path:
    """A hidden, unique name beside ``target`` ending in ``.tmp``."""
    target = Path(target)
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")


def is_temporary(name: str) -> bool:
    """True for a name :func:`temporary_name` makes (a write that never finished, if it is still there)."""
    return name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; make a file or a folder there, and when the block ends
    without an exception it is synced and renamed to ``target`` (a folder replaces an existing one).

    ``exclusive``: create ``target`` only if it does not exist yet (FileExistsError otherwise, the file left
    as it was): when several processes race to write the same file, exactly one content wins, whole.
    Whatever happens, nothing is left at the temporary path. A full disk, met by the block's writes or by
    the sync, raises DiskFullError naming ``target``.
    """
    target = Path(target)
    scratch = temporary_name(target)
    kept = unchanged(target)  # known now, true after a failure too: a failed write leaves ``target`` as it was
    try:
        yield scratch
        _sync(scratch)
        _publish(scratch, target, exclusive=exclusive)
    except OSError as error:
        if isinstance(error, DiskFullError) or not is_disk_full(error):
            raise
        raise DiskFullError(target, kept=kept, resume="free some space and run it again", code=error.errno) from None
    finally:
        _remove(scratch)  # also gives back the space the unfinished write took


@contextlib.contextmanager
def atomic_write(
    target: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None, exclusive: bool = False
) -> Iterator[IO[Any]]:
    """Yield a file open for writing (``mode`` ``"wb"`` or ``"w"``) that becomes ``target`` when the block
    ends without an exception. The file gets the usual permissions (0666 less the umask), unlike mkstemp's
    0600. ``exclusive`` as for :func:`atomic_path`."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes a new file: mode 'w' or 'wb', not {mode!r}")
    with atomic_path(target, exclusive=exclusive) as scratch:
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def write_bytes(target: str | os.PathLike[str], data: bytes, *, exclusive: bool = False) -> None:
    """``target`` holds ``data``, written atomically."""
    with atomic_write(target, "wb", exclusive=exclusive) as f:
        f.write(data)


def write_text(target: str | os.PathLike[str], text: str, *, exclusive: bool = False) -> None:
    """``target`` holds ``text`` (UTF-8), written atomically."""
    with atomic_write(target, "w", encoding="utf-8", exclusive=exclusive) as f:
        f.write(text)


def _sync(path: Path) -> None:
    """Flush a file (or every file of a folder) to stable storage, so the rename never exposes an empty one.
    A file written through :func:`atomic_write` is synced already; a second fsync of clean pages is free."""
    if path.is_dir():
        for folder, _, names in os.walk(path):
            for name in names:
                _fsync(os.path.join(folder, name))
    elif path.exists():
        _fsync(path)


def _fsync(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(scratch: Path, target: Path, *, exclusive: bool) -> None:
    if exclusive:
        try:
            # A hard link creates the name only if it is absent, with the whole content at once.
            os.link(scratch, target)
            return
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: a check and a rename (a narrow race)
            if target.exists():
                raise FileExistsError(f"{target} exists") from None
    if scratch.is_dir() and not scratch.is_symlink() and (target.exists() or target.is_symlink()):
        # A folder cannot be renamed onto a non-empty one: move the old one aside, put it back on failure.
        old = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
        os.replace(target, old)
        try:
            os.replace(scratch, target)
        except BaseException:
            os.replace(old, target)
            raise
        _remove(old)
        return
    os.replace(scratch, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)
