"""Progress lines on stderr for a person watching: a bar per epoch with the running loss and accuracy.

Standard library only. Drawn only when stderr is a terminal and the run is not quiet (and only by rank 0
under torchrun); otherwise every method is a no-op. Notes (``note``) are printed unless quiet, terminal
or not, since they say what the run is doing (skipped files, the epoch summary).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 24
_REDRAW_SECONDS = 0.1


class Progress:
    """``irv2: epoch 3/10 train [#######.....]  12/40  loss 0.532  acc 81.2%  9.3 img/s``, redrawn in place."""

    def __init__(self, *, quiet: bool = False, main: bool = True, stream: TextIO | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.quiet = quiet or not main
        self.enabled = not self.quiet and _is_terminal(self.stream)
        self._label = ""
        self._total = 0
        self._done = 0
        self._items = 0
        self._start = 0.0
        self._last_draw = float("-inf")

    def start(self, label: str, total: int) -> None:
        """Begin a bar of ``total`` steps named ``label`` (e.g. ``epoch 3/10 train``)."""
        self._label, self._total, self._done, self._items = label, total, 0, 0
        self._start = time.monotonic()
        self._last_draw = float("-inf")

    def update(self, steps: int, items: int, loss: float | None = None, accuracy: float | None = None) -> None:
        """``steps`` more steps done covering ``items`` more images, with the running loss and accuracy."""
        self._done += steps
        self._items += items
        now = time.monotonic()
        if self.enabled and (now - self._last_draw >= _REDRAW_SECONDS or self._done >= self._total):
            self._last_draw = now
            self._draw(now, loss, accuracy)

    def end(self) -> None:
        """Erase the bar."""
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def note(self, message: str) -> None:
        """A line for the user on stderr (``irv2: message``), unless quiet."""
        if not self.quiet:
            self.end()
            print(f"irv2: {message}", file=self.stream, flush=True)

    def _draw(self, now: float, loss: float | None, accuracy: float | None) -> None:
        fraction = min(self._done / self._total, 1.0) if self._total else 1.0
        filled = round(fraction * _WIDTH)
        bar = "#" * filled + "." * (_WIDTH - filled)
        width = len(str(self._total))
        text = f"\rirv2: {self._label} [{bar}] {self._done:>{width}}/{self._total}"
        if loss is not None:
            text += f"  loss {loss:.4f}"
        if accuracy is not None:
            text += f"  acc {100 * accuracy:.1f}%"
        elapsed = now - self._start
        if elapsed > 0 and self._items:
            text += f"  {self._items / elapsed:.1f} img/s"
        self.stream.write(text + "\033[K")
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
