"""The one clock irv2 stamps records with: UTC, ISO 8601, to the second (``2026-12-03T16:26:18+00:00``)."""

from __future__ import annotations

import datetime


def utc_now() -> str:
    """The current time in UTC as ISO 8601 with its offset, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
