"""Where downloads live, and the record kept beside each one.

Layout under ``irv2_home()``::

    downloads/<source name>/<filename>          the verified artifact, exactly as downloaded
    downloads/<source name>/<filename>.json     its record: url, where redirects led, checksum, size, time
    downloads/<source name>/<filename>.part     an interrupted download (resumed when the server allows)
    downloads/<source name>/<filename>.lock     the inter-process lock (see ``lock.py``)
    modules/<source name>/                      converted native modules (written by ``irv2.api``, not here)

The record's ``checksum`` is the published one when a source has one; otherwise it is the sha256 computed
on the first download (trust on first use) and every later use is checked against it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_text
from ..clock import utc_now
from .registry import Source, parse_checksum

RECORD_SUFFIX = ".json"
PART_SUFFIX = ".part"
ORIGIN_PUBLISHED = "published"
ORIGIN_FIRST_USE = "trust-on-first-use"


def irv2_home() -> Path:
    """irv2's cache root: ``$IRV2_HOME``, else ``$XDG_CACHE_HOME/irv2``, else ``~/.cache/irv2``."""
    home = os.environ.get("IRV2_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative values
        return Path(xdg) / "irv2"
    return Path.home() / ".cache" / "irv2"


def is_offline() -> bool:
    """True when ``IRV2_OFFLINE`` is 1, true, yes or on (any case): no network access at all."""
    return os.environ.get("IRV2_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def download_dir(source: Source) -> Path:
    """``<home>/downloads/<source name>/``."""
    return irv2_home() / "downloads" / source.name


def artifact_path(source: Source) -> Path:
    """Where the verified artifact of ``source`` is (or will be) cached."""
    return download_dir(source) / source.filename


def record_path(source: Source) -> Path:
    """The JSON record kept beside the artifact."""
    return download_dir(source) / (source.filename + RECORD_SUFFIX)


def part_path(source: Source) -> Path:
    """The partial download of ``source``."""
    return download_dir(source) / (source.filename + PART_SUFFIX)


def module_cache_dir(source: Source) -> Path:
    """``<home>/modules/<source name>/``: reserved for native modules converted from ``source``.

    Only the path is computed here; the hub never creates or writes this folder.
    """
    return irv2_home() / "modules" / source.name


@dataclass(frozen=True)
class CacheRecord:
    """What ``<filename>.json`` says about a cached artifact."""

    url: str | None
    checksum: str
    checksum_origin: str
    size_bytes: int
    sha256: str | None
    downloaded_at: str | None
    redirected_to: str | None = None  # where redirects from ``url`` led (no query), None without redirects


def read_record(source: Source) -> CacheRecord | None:
    """The artifact's record, or None when it is missing or unreadable (an unreadable record counts as none)."""
    try:
        data = json.loads(record_path(source).read_text(encoding="utf-8"))
        checksum = data["checksum"]
        parse_checksum(checksum)
        return CacheRecord(
            url=data.get("url"),
            checksum=checksum,
            checksum_origin=data.get("checksum_origin", ORIGIN_FIRST_USE),
            size_bytes=int(data["size_bytes"]),
            sha256=data.get("sha256"),
            downloaded_at=data.get("downloaded_at"),
            redirected_to=data.get("redirected_to"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(source: Source, record: CacheRecord) -> None:
    """Write the record atomically (a temporary file renamed into place)."""
    data: dict[str, Any] = {
        "source": source.name,
        "filename": source.filename,
        "url": record.url,
        "redirected_to": record.redirected_to,
        "checksum": record.checksum,
        "checksum_origin": record.checksum_origin,
        "sha256": record.sha256,
        "size_bytes": record.size_bytes,
        "downloaded_at": record.downloaded_at,
        "verified_at": utc_now(),
    }
    write_text(record_path(source), json.dumps(data, indent=2) + "\n")
