"""What a fine-tuning run tells the person watching: a bar per epoch phase (irv2's one progress bar) with the
running loss, accuracy and images per second, and notes.

The bar is drawn only when stderr is a terminal and the run is not quiet, and only by rank 0 under torchrun.
Notes (``note``) are printed unless quiet, terminal or not, since they say what the run is doing (skipped
files, the epoch summary).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ..progress import ProgressBar


class Progress:
    """``irv2: epoch 3/10 train:  30%|███       | 12/40 [00:04<00:09, loss 0.5320, acc 81.2%, 9.3 img/s]``."""

    def __init__(self, *, quiet: bool = False, main: bool = True, stream: TextIO | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.quiet = quiet or not main
        self._bar: ProgressBar | None = None
        self._items = 0
        self._start = 0.0

    def start(self, label: str, total: int) -> None:
        """Begin a bar of ``total`` steps named ``label`` (e.g. ``epoch 3/10 train``)."""
        self.end()
        self._bar = ProgressBar(total, desc=label, unit=" steps", quiet=self.quiet, stream=self.stream)
        self._items, self._start = 0, time.monotonic()

    def update(self, steps: int, items: int, loss: float | None = None, accuracy: float | None = None) -> None:
        """``steps`` more steps done covering ``items`` more images, with the running loss and accuracy."""
        if self._bar is None:
            return
        self._items += items
        shown = [f"loss {loss:.4f}"] if loss is not None else []
        if accuracy is not None:
            shown.append(f"acc {100 * accuracy:.1f}%")
        elapsed = time.monotonic() - self._start
        if elapsed > 0 and self._items:
            shown.append(f"{self._items / elapsed:.1f} img/s")
        self._bar.set_postfix_str(", ".join(shown), refresh=False)
        self._bar.update(steps)

    def end(self) -> None:
        """Erase the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def note(self, message: str) -> None:
        """A line for the user on stderr (``irv2: message``), unless quiet; a bar in progress is redrawn after."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.clear()
        print(f"irv2: {message}", file=self.stream, flush=True)
