"""A full disk, told the same way by every write: which errors count, and how a caller adds what it kept.

:mod:`irv2.atomic` turns a full disk met while writing a file into a :class:`~irv2.errors.DiskFullError` that
names the file and says that nothing was written under its name. Only the caller knows the rest (the parts of a
job kept for the rerun, a download's bytes kept for the resume, how much room is needed), so it wraps its writes
in :func:`on_disk_full`, which also catches writers that bypass :mod:`irv2.atomic` (an exporter writing into its
scratch folder, a download streaming into its ``.part`` file).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator

from .errors import DiskFullError

# ENOSPC: the file system is full. EDQUOT: the user's quota on it is (not defined everywhere, e.g. on Windows).
DISK_FULL_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)
ROOM_ELSEWHERE = "or set IRV2_HOME to a folder on a disk with room"


def is_disk_full(error: BaseException) -> bool:
    """True for an ``OSError`` that says the disk (or the user's quota on it) is full."""
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


@contextlib.contextmanager
def on_disk_full(
    path: str | os.PathLike[str], *, kept: str | Callable[[], str], resume: str | Callable[[], str]
) -> Iterator[None]:
    """Turn a full disk met inside the block into a DiskFullError that says ``kept`` and ``resume``: text, or a
    function that says it when the failure comes (what a job has kept grows while the block runs).

    It names the file that :mod:`irv2.atomic` was writing when the error comes from there, else ``path``. Other
    errors pass unchanged, and no traceback from inside the writer is chained: the message says it all.
    """
    try:
        yield
    except OSError as error:
        if not is_disk_full(error):
            raise
        advice = {"kept": _text(kept), "resume": _text(resume)}
        if isinstance(error, DiskFullError):
            raise error.advised(**advice) from None
        raise DiskFullError(path, **advice, code=error.errno) from None


def unchanged(target: str | os.PathLike[str]) -> str:
    """What a failed write through :mod:`irv2.atomic` keeps at ``target``: what was there, known before it starts."""
    there = os.path.lexists(target)
    return "what was there before is unchanged" if there else "nothing was written there"


def size_text(size: int) -> str:
    """``size`` bytes for a message: ``214.5 MB``, ``300.0 kB``, ``12 bytes`` (decimal units, as ``df -H``)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _text(text: str | Callable[[], str]) -> str:
    return text if isinstance(text, str) else text()
