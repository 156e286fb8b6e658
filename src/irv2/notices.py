"""One-line notices for the person running irv2: a faster engine that is missing, a one-off conversion about to
start. Each is one plain line on stderr, ``irv2: ...``, never a Python warning with a source line under it, and
stdout (which may hold results) is left alone. ``IRV2_QUIET=1`` (and the commands' ``--quiet``) silences them."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

QUIET_VARIABLE = "IRV2_QUIET"
_said: set[str] = set()  # notices said once per process: a service loading many modules says each once
_silenced = False  # set by silenced() (the commands' --quiet)


def notify(message: str, *, once: bool = False) -> None:
    """Print ``irv2: message`` on stderr (unless quiet); with ``once``, only the first time in this process."""
    if once:
        if message in _said:
            return
        _said.add(message)
    if quiet():
        return
    print(f"irv2: {message}", file=sys.stderr, flush=True)


def quiet() -> bool:
    """Whether notices (and progress that irv2 shows on stderr) are silenced: inside ``silenced()``, or
    ``IRV2_QUIET`` set and not 0."""
    return _silenced or os.environ.get(QUIET_VARIABLE, "").strip() not in ("", "0")


@contextlib.contextmanager
def silenced(on: bool = True) -> Iterator[None]:
    """No notices while inside (with ``on``); what was in force before comes back after."""
    global _silenced
    before, _silenced = _silenced, _silenced or on
    try:
        yield
    finally:
        _silenced = before


def forget() -> None:
    """Say every once-per-process notice again (for tests, which each want to see them)."""
    _said.clear()
