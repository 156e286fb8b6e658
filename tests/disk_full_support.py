"""A disk that fills up, for the tests of what irv2 does then: an ``open`` that writes until the room is used up and
then fails the way the kernel does (a short write, then ``OSError(ENOSPC)``, or ``EDQUOT`` for a quota).

>>> disk = FullDisk(free=100_000)
>>> monkeypatch.setattr(irv2.hub.download, "open", disk.open, raising=False)   # the module's writes go to it

The files are real (in the test's folder); only their room is counted. Files opened for reading pass through.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from typing import Any


class FullDisk:
    """Room for ``files_that_fit`` files whatever their size, then for ``free`` more bytes in all."""

    def __init__(self, free: int = 0, *, files_that_fit: int = 0, code: int = errno.ENOSPC) -> None:
        self.free = free
        self.files_that_fit = files_that_fit
        self.code = code
        self.failures = 0  # writes refused so far: a test whose disk never filled up proves nothing

    def open(self, file: Any, mode: str = "r", buffering: int = -1, encoding: str | None = None, **kwargs: Any) -> Any:
        if not set(mode) & set("wax+"):
            return builtins.open(file, mode, buffering, encoding, **kwargs)
        raw_mode = next(c for c in mode if c in "wax") + ("+" if "+" in mode else "")
        if self.files_that_fit:
            self.files_that_fit -= 1
            raw: io.FileIO = io.FileIO(file, raw_mode, closefd=kwargs.get("closefd", True))
        else:
            raw = _FillingFile(self, file, raw_mode, closefd=kwargs.get("closefd", True))
        if buffering == 0:
            return raw
        buffered = io.BufferedWriter(raw) if "+" not in mode else io.BufferedRandom(raw)
        if "b" in mode:
            return buffered
        return io.TextIOWrapper(buffered, encoding=encoding or "utf-8", newline=kwargs.get("newline"))

    def refuse(self) -> OSError:
        self.failures += 1
        return OSError(self.code, os.strerror(self.code))


class _FillingFile(io.FileIO):
    """A file on ``disk``: writes what still fits (a short write, as write(2) does), then raises."""

    def __init__(self, disk: FullDisk, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disk = disk

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if len(view) and self.disk.free <= 0:
            raise self.disk.refuse()
        written = super().write(view[: self.disk.free])
        self.disk.free -= written
        return written
