"""The one progress bar irv2 draws (images classified, bytes downloaded, training steps), on tqdm.

Drawn on stderr only for a person watching: when the stream is a terminal and the user did not ask for
quiet. Otherwise every method is a no-op, so callers never branch on it. The bar is erased when it closes,
so what follows on stderr starts on a clean line; stdout, which carries results, is never touched.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm


class ProgressBar(tqdm):
    """``irv2: classify:  45%|████▌     | 450/1000 [00:10<00:12, 44.3 images/s, 2 failed]``.

    ``initial`` is work done before this run (a resumed job): it fills the bar, and tqdm leaves it out of
    the rate, so the rate and the ETA are this run's. ``update(n, failed=k)`` also counts failures.
    """

    def __init__(
        self,
        total: int | None,
        *,
        desc: str = "",
        unit: str = " images",
        initial: int = 0,
        quiet: bool = False,
        stream: TextIO | None = None,
        show: bool | None = None,
        leave: bool = False,
        **options: Any,
    ) -> None:
        stream = sys.stderr if stream is None else stream
        if show is None:  # the default: for a person watching
            show = not quiet and is_terminal(stream)
        self.failed = 0
        super().__init__(
            total=total,
            desc=f"irv2: {desc}" if desc else "irv2",
            unit=unit,
            initial=initial,
            file=stream,
            disable=not show,
            leave=leave,
            dynamic_ncols=True,
            mininterval=0.1,
            # The average over the run, not tqdm's moving average: batches arrive in bursts, and a job's ETA
            # should not jump with each one.
            smoothing=0,
            **options,
        )

    def update(self, n: int = 1, failed: int = 0) -> bool | None:  # type: ignore[override]
        if failed:
            self.failed += failed
            self.set_postfix_str(f"{self.failed} failed", refresh=False)
        return super().update(n)


def byte_bar(
    total: int | None, *, desc: str, initial: int = 0, show: bool | None = None, stream: TextIO | None = None
) -> ProgressBar:
    """A bar counting bytes (``12.3M/220M [00:04, 3.1MB/s]``), for downloads; its last state stays on screen,
    a record of what was fetched. ``show``: None draws it on a terminal only; True always (the caller asked
    for it), False never."""
    return ProgressBar(
        total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1000,
        initial=initial,
        show=show,
        stream=stream,
        leave=True,
    )


def is_terminal(stream: object) -> bool:
    """Whether ``stream`` is a terminal (False for a closed stream or an object without ``isatty``)."""
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False
