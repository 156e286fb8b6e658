"""An inter-process lock on ``<path>.lock`` so that concurrent processes download an artifact only once.

It uses ``fcntl.flock``: the kernel drops the lock when its holder exits for any reason (``kill -9``
included), so a lock file left behind never blocks anyone; the file itself is never deleted (deleting it
would let two processes lock two different inodes). The holder writes its pid into the file, only to name
it in messages. ``flock`` on NFS may not exclude processes on other machines (Linux emulates it with
byte-range locks there, other systems may not lock at all): keep ``IRV2_HOME`` on a local disk when several
machines share it.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path
from types import TracebackType

from ..errors import DownloadError

LOCK_SUFFIX = ".lock"
DEFAULT_TIMEOUT_S = 30 * 60.0
_POLL_S = 0.05


def lock_timeout() -> float:
    """Seconds to wait for a lock: ``$IRV2_LOCK_TIMEOUT`` if set, else 30 minutes (a slow 200 MB download)."""
    text = os.environ.get("IRV2_LOCK_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        raise DownloadError(f"IRV2_LOCK_TIMEOUT must be a number of seconds, not {text!r}") from None
    if value < 0 or value != value:
        raise DownloadError(f"IRV2_LOCK_TIMEOUT must be a number of seconds >= 0, not {text!r}")
    return value


class FileLock:
    """Exclusive lock on ``<path>.lock`` held in a ``with`` block; not re-entrant.

    Waits up to ``timeout`` seconds (default ``lock_timeout()``), then raises DownloadError naming the lock
    file and the pid of its holder. With ``verbose``, says once on stderr that it is waiting.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float | None = None, verbose: bool = False) -> None:
        self.path = Path(f"{os.fspath(path)}{LOCK_SUFFIX}")
        self.timeout = lock_timeout() if timeout is None else timeout
        self.verbose = verbose
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this FileLock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise DownloadError(
                f"cannot create the lock file {self.path}: {error.strerror or error}. "
                "Set IRV2_HOME to a writable folder"
            ) from None
        deadline = time.monotonic() + self.timeout
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                if time.monotonic() >= deadline:
                    raise DownloadError(
                        f"could not lock {self.path} within {self.timeout:g} s: another process "
                        f"({_holder(fd)}) is downloading the same file. Wait for it, or raise IRV2_LOCK_TIMEOUT"
                    )
                if self.verbose and not told:
                    print(f"irv2: waiting for {self.path} ({_holder(fd)})", file=sys.stderr, flush=True)
                    told = True
                time.sleep(_POLL_S)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # while still locked: no pid names a process that no longer holds it
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "pid unknown"
