"""A one-line progress bar on stderr, drawn only for a person watching: stderr is a terminal and no ``--quiet``.

Standard library only. When disabled every method is a no-op, so callers never branch on it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 30
_REDRAW_SECONDS = 0.1


class Progress:
    """``irv2: [#######.......]  12/50 images  3.1/s  ETA 0:13  1 failed`` redrawn in place, at most ten
    times a second.

    ``initial``: work already done before this run (a resumed job): it fills the bar but not the rate, so
    the rate and the ETA reflect this run's speed.
    """

    def __init__(
        self,
        total: int,
        *,
        unit: str = "images",
        quiet: bool = False,
        stream: TextIO | None = None,
        initial: int = 0,
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.total = total
        self.unit = unit
        self.initial = initial
        self.done = initial
        self.failed = 0
        self.enabled = not quiet and _is_terminal(self.stream)
        self._start = time.monotonic()
        self._last_draw = float("-inf")

    def update(self, count: int = 1, failed: int = 0) -> None:
        """Count ``count`` more items done, ``failed`` of them failed."""
        self.done += count
        self.failed += failed
        now = time.monotonic()
        if self.enabled and (now - self._last_draw >= _REDRAW_SECONDS or self.done >= self.total):
            self._last_draw = now
            self._draw(now)

    def clear(self) -> None:
        """Erase the bar before other output reaches the terminal; the next ``update`` draws it again."""
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._last_draw = float("-inf")

    def close(self) -> None:
        """Erase the bar, so what follows on stderr starts on a clean line."""
        self.clear()

    def __enter__(self) -> Progress:
        if self.enabled:
            self._draw(time.monotonic())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _draw(self, now: float) -> None:
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = round(fraction * _WIDTH)
        elapsed = now - self._start
        fresh = self.done - self.initial
        rate = eta = ""
        if elapsed > 0 and fresh:
            per_second = fresh / elapsed
            rate = f"  {per_second:.1f}/s"
            if self.done < self.total:
                eta = f"  ETA {format_duration((self.total - self.done) / per_second)}"
        failed = f"  {self.failed} failed" if self.failed else ""
        bar = "#" * filled + "." * (_WIDTH - filled)
        count = f"{self.done:>{len(str(self.total))}}/{self.total} {self.unit}"
        self.stream.write(f"\rirv2: [{bar}] {count}{rate}{eta}{failed}\033[K")
        self.stream.flush()


def format_duration(seconds: float) -> str:
    """``0:07``, ``12:34`` or ``3:02:09``: minutes and seconds, with hours when there are any."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False
