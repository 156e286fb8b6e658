"""Verified downloads: a handle in, the path of a checked local file out.

``fetch`` holds the artifact's lock (so concurrent processes download once), reuses a cached file that
verifies, and otherwise tries each URL of the source in order. A transfer streams into ``<file>.part``,
resumes it with an HTTP Range request when the server allows, and is checked (length, then md5/sha256)
before one atomic rename makes it the cached file: a file under its final name has always been verified.

Policies:
    * No published checksum: the sha256 of the first download is recorded beside the file (trust on first
      use) and every later use, re-downloads included, must match it.
    * A cached file that fails verification (corrupted or tampered with) is downloaded again and replaced;
      offline, it is an error that names the file. It is never used.
    * Every socket operation times out after ``timeout`` seconds: a stalled server fails, it never hangs.
    * A full disk (or quota) stops the download with a DiskFullError: the ``.part`` keeps the bytes written
      when the server can resume (the next fetch goes on from there), and is deleted when it cannot.
    * Redirects (tfhub.dev -> Kaggle -> storage) are followed by ``redirects.py``'s policy: a bounded chain, no
      loop, no https -> http; a refused chain is that URL's failure and the next mirror is tried. The record
      keeps the URL tried (whatever the handle's spelling, the cache folder is the source's name) and, after
      redirects, where the file came from.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import os
import re
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO

from ..clock import utc_now
from ..disk_full import ROOM_ELSEWHERE, is_disk_full, on_disk_full, size_text
from ..errors import DiskFullError, DownloadError, Irv2Error
from ..progress import byte_bar
from .cache import (
    ORIGIN_FIRST_USE,
    ORIGIN_PUBLISHED,
    CacheRecord,
    artifact_path,
    is_offline,
    module_cache_dir,
    part_path,
    read_record,
    record_path,
    write_record,
)
from .lock import FileLock
from .redirects import RedirectRefused, opener
from .registry import Source, parse_checksum, resolve_source

CHUNK_BYTES = 1 << 20
_HASH_BLOCK = 1 << 22


def fetch(source: Source, *, offline: bool | None = None, progress: bool | None = None, timeout: float = 30.0) -> Path:
    """The path of the verified local copy of ``source``'s artifact, downloading it if needed.

    Args:
        source: what to fetch (see ``irv2.hub.sources()``, ``find_source``, ``source_for_url``).
        offline: never touch the network; None reads ``IRV2_OFFLINE``.
        progress: a progress bar on stderr; None shows it when stderr is a terminal, False never.
        timeout: seconds allowed for connecting and for each read before a server counts as stalled.

    Returns:
        ``<irv2_home>/downloads/<source.name>/<source.filename>``, checked against the published checksum
        or the sha256 recorded at its first download.

    Raises:
        DownloadError: offline (or the network unreachable) with nothing cached, every URL failed (each
            URL is listed with its error), a checksum mismatch, or the lock timed out.
    """
    offline = is_offline() if offline is None else offline
    show = _show_progress(progress)
    final = artifact_path(source)
    if offline and not final.exists():
        raise DownloadError(_missing_message(source, final, "offline mode (IRV2_OFFLINE or offline=True)"))
    with FileLock(final, verbose=show):
        expected, problem = _check_cached(source, final)
        if problem is None and final.exists():
            return final
        if offline:
            raise DownloadError(f"{source.name}: {problem}, and offline mode forbids downloading it again")
        return _download(source, final, expected, timeout=timeout, show=show, problem=problem)


def fetch_handle(handle: str | None, **kwargs: Any) -> tuple[Source, Path]:
    """Resolve ``handle`` (registered name, alias or URL; any other http(s) URL; None for the default)
    and ``fetch`` it with ``kwargs``. Returns ``(source, path)``; HandleError for an unknown handle."""
    source = resolve_source(handle)
    return source, fetch(source, **kwargs)


def describe(handle: str | Source | None = None) -> dict[str, Any]:
    """What irv2 knows about a source and its cached copy, for ``irv2 info``. No network, no hashing.

    Keys: name, description, aliases, urls, checksum (published, else the one recorded at the first
    download, else None), checksum_origin ("published", "trust-on-first-use" or None), format, num_classes,
    label_offset, preprocessing, license, path (where the artifact is cached), cached (bool), size_on_disk
    (bytes or None), size_bytes (published size or None), downloaded_at, module_cache_dir.
    """
    source = handle if isinstance(handle, Source) else resolve_source(handle)
    path = artifact_path(source)
    record = read_record(source)
    cached = path.is_file()
    if source.checksum:
        checksum, origin = source.checksum, ORIGIN_PUBLISHED
    elif record is not None:
        checksum, origin = record.checksum, record.checksum_origin
    else:
        checksum, origin = None, None
    info = source.to_dict()
    info.update(
        checksum=checksum,
        checksum_origin=origin,
        path=str(path),
        cached=cached,
        size_on_disk=path.stat().st_size if cached else None,
        downloaded_at=record.downloaded_at if record is not None and cached else None,
        module_cache_dir=str(module_cache_dir(source)),
    )
    return info


# -- the cached copy ---------------------------------------------------------------------------------


def _check_cached(source: Source, final: Path) -> tuple[str | None, str | None]:
    """``(expected checksum, problem)``: problem is None when ``final`` is missing or verifies.

    A file without a usable record (placed by hand, or the record lost) is verified against the
    published checksum, or, when none is published, trusted as it is and its sha256 recorded.
    """
    record = read_record(source)
    expected = source.checksum or (record.checksum if record is not None else None)
    if not final.exists():
        return expected, None
    digests, size = _hash_file(final, expected)
    if expected is not None:
        algorithm, want = parse_checksum(expected)
        if digests[algorithm] != want:
            got = f"{algorithm}:{digests[algorithm]}"
            return expected, f"the cached file {final} failed verification (expected {expected}, got {got})"
    if source.size_bytes is not None and size != source.size_bytes:
        return expected, f"the cached file {final} has {size} bytes, expected {source.size_bytes}"
    if record is None or record.checksum != expected or record.size_bytes != size:
        _record(source, None if record is None else record.url, expected, digests, size, record)
    return expected, None


def _record(
    source: Source,
    url: str | None,
    expected: str | None,
    digests: dict[str, str],
    size: int,
    previous: CacheRecord | None = None,
    final_url: str | None = None,
) -> None:
    """Write the record; ``final_url`` is where redirects led from ``url`` (kept without its query: signed
    storage URLs carry short-lived credentials there). A re-recorded file keeps its previous origin."""
    if source.checksum:
        checksum, origin = source.checksum, ORIGIN_PUBLISHED
    else:
        checksum, origin = expected or f"sha256:{digests['sha256']}", ORIGIN_FIRST_USE
    kept = previous if previous is not None and url == previous.url else None
    downloaded_at = kept.downloaded_at if kept else None
    if final_url is None:
        redirected_to = kept.redirected_to if kept else None
    else:
        redirected_to = None if final_url == url else _without_query(final_url)
    write_record(
        source,
        CacheRecord(
            url=url,
            checksum=checksum,
            checksum_origin=origin,
            size_bytes=size,
            sha256=digests["sha256"],
            downloaded_at=downloaded_at or utc_now(),
            redirected_to=redirected_to,
        ),
    )


def _hash_file(path: Path, expected: str | None) -> tuple[dict[str, str], int]:
    hashers = _hashers(expected)
    size = 0
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            size += len(block)
            for h in hashers.values():
                h.update(block)
    return {name: h.hexdigest() for name, h in hashers.items()}, size


def _hashers(expected: str | None) -> dict[str, Any]:
    # sha256 always (it goes into the record); the published algorithm too when it is another one.
    names = {"sha256"} | ({parse_checksum(expected)[0]} if expected else set())
    return {name: hashlib.new(name) for name in sorted(names)}


# -- downloading ---------------------------------------------------------------------------------------


class _Failure(Exception):
    """One URL failed; the next mirror may work. ``unreachable``: the network itself seems down."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def _download(
    source: Source, final: Path, expected: str | None, *, timeout: float, show: bool, problem: str | None
) -> Path:
    part = part_path(source)
    failures: list[tuple[str, _Failure]] = []
    for url in source.urls:
        try:
            digests, size, final_url = _transfer(url, part, expected, timeout=timeout, show=show, label=source.filename)
            _verify_download(source, url, part, expected, digests, size)
        except _Failure as failure:
            failures.append((url, failure))
            continue
        os.replace(part, final)
        kept = f"the verified download, {final}; not its record"
        with on_disk_full(
            final, kept=kept, resume="free some space and run it again: the file is checked, then recorded"
        ):
            _record(source, url, expected, digests, size, final_url=final_url)
        return final
    listing = "\n".join(f"  {url}: {failure}" for url, failure in failures)
    if all(failure.unreachable for _, failure in failures):
        reason = "the network is unreachable"
        if problem:
            reason += f" and {problem}"
        raise DownloadError(_missing_message(source, final, reason, listing))
    prefix = f"{problem}; " if problem else ""
    raise DownloadError(f"{source.name}: {prefix}could not download {source.filename} from any URL:\n{listing}")


def _verify_download(
    source: Source, url: str, part: Path, expected: str | None, digests: dict[str, str], size: int
) -> None:
    if source.size_bytes is not None and size != source.size_bytes:
        part.unlink(missing_ok=True)
        raise _Failure(f"size mismatch: expected {source.size_bytes} bytes, got {size}")
    if expected is None:
        return
    algorithm, want = parse_checksum(expected)
    if digests[algorithm] != want:
        part.unlink(missing_ok=True)
        got = f"{algorithm}:{digests[algorithm]}"
        if source.checksum:
            raise _Failure(f"checksum mismatch: expected {expected} (published), got {got}")
        raise _Failure(
            f"checksum mismatch: expected {expected} (recorded at the first download), got {got}; if the file "
            f"changed upstream on purpose, delete {record_path(source)} to accept the new one"
        )


def _transfer(
    url: str, part: Path, expected: str | None, *, timeout: float, show: bool, label: str, _retry: bool = True
) -> tuple[dict[str, str], int, str]:
    """Stream ``url`` into ``part`` (resuming it when possible); returns the digests and size of ``part``
    and the URL that answered after redirects."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = opener().open(request, timeout=timeout)
    except RedirectRefused as refused:
        raise _Failure(str(refused)) from None
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset and _retry:  # the .part does not fit this server's file: start over
            part.unlink(missing_ok=True)
            return _transfer(url, part, expected, timeout=timeout, show=show, label=label, _retry=False)
        where = f" from {_without_query(error.geturl())} (redirected)" if error.geturl() != url else ""
        raise _Failure(f"HTTP {error.code} {error.reason}{where}") from None
    except urllib.error.URLError as error:
        raise _Failure(_reason_text(error.reason), unreachable=_is_unreachable(error.reason)) from None
    except (OSError, http.client.HTTPException) as error:
        raise _Failure(f"no response within {timeout:g} s" if _is_timeout(error) else _reason_text(error)) from None

    with response:
        status = response.status
        length = _int_header(response.headers.get("Content-Length"))
        if status == 206 and offset:
            start, total = _content_range(response.headers.get("Content-Range"))
            if total is None and length is not None:
                total = offset + length
            if start != offset:
                if not _retry:
                    raise _Failure(f"bad Content-Range {response.headers.get('Content-Range')!r} for {offset}-")
                part.unlink(missing_ok=True)
                return _transfer(url, part, expected, timeout=timeout, show=show, label=label, _retry=False)
        elif status == 200:
            offset, total = 0, length
        else:
            raise _Failure(f"unexpected HTTP {status} {response.reason}")
        resumable = status == 206 or response.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
        lost = None if resumable else "this server cannot resume a download"  # what a failed write keeps
        hashers = _hashers(expected)
        try:
            f: BinaryIO = open(part, "ab" if offset else "wb")  # noqa: SIM115 (closed below)
        except OSError as error:
            raise _write_failure(part, error, total=total, lost=lost) from None
        with f:
            if offset:
                _hash_prefix(part, offset, hashers)
            bar = byte_bar(total, desc=label, initial=offset, show=True) if show else None
            received = 0
            try:
                while True:
                    try:
                        chunk = response.read(CHUNK_BYTES)
                    except (OSError, http.client.HTTPException) as error:
                        why = f"stalled for {timeout:g} s" if _is_timeout(error) else _reason_text(error)
                        raise _Failure(f"transfer failed after {offset + received} bytes: {why}") from None
                    if not chunk:
                        break
                    try:
                        f.write(chunk)
                    except OSError as error:
                        _close_quietly(f)  # else `with` closes it, flushes again and raises again
                        raise _write_failure(part, error, total=total, lost=lost) from None
                    for h in hashers.values():
                        h.update(chunk)
                    received += len(chunk)
                    if bar:
                        bar.update(len(chunk))
                if length is not None and received < length:
                    raise _Failure(f"truncated transfer: got {offset + received} of {offset + length} bytes")
                try:
                    f.flush()
                    os.fsync(f.fileno())
                except OSError as error:
                    _close_quietly(f)
                    # On some file systems a full disk shows only here, and a failed sync may have lost any of the
                    # bytes written: nothing says which, so the file is no prefix to resume from.
                    unsure = "a failed sync leaves no telling which bytes reached the disk"
                    raise _write_failure(part, error, total=total, lost=unsure) from None
            except _Failure as failure:
                if not resumable:
                    part.unlink(missing_ok=True)
                note = "" if resumable else " (the server cannot resume: partial file deleted)"
                raise _Failure(f"{failure}{note}") from None
            finally:
                if bar:
                    bar.close()
    return {name: h.hexdigest() for name, h in hashers.items()}, offset + received, response.geturl()


def _write_failure(part: Path, error: OSError, *, total: int | None, lost: str | None) -> Irv2Error:
    """The error for a ``.part`` that cannot be written. On a full disk, what it kept: the bytes written so far,
    or, when ``lost`` says why they cannot be resumed from, nothing (the file is deleted, giving the space back)."""
    if not is_disk_full(error):
        return DownloadError(f"cannot write {part}: {error.strerror or error}")
    kept_bytes = part.stat().st_size if lost is None and part.exists() else 0
    needed = f"free {size_text(total - kept_bytes)} or more" if total else "free some space"
    if kept_bytes:
        of_total = f" of {size_text(total)}" if total else ""
        kept = f"the {size_text(kept_bytes)}{of_total} downloaded so far, in this file"
        go_on = f"the download resumes from there ({ROOM_ELSEWHERE}: it starts over there)"
    else:
        kept = "nothing" if lost is None or not part.exists() else f"nothing, the partial file was deleted ({lost})"
        part.unlink(missing_ok=True)
        go_on = f"the download starts over ({ROOM_ELSEWHERE})"
    return DiskFullError(
        part, kept=kept, resume=f"{needed} in {part.parent} and run it again: {go_on}", code=error.errno
    )


def _close_quietly(f: BinaryIO) -> None:
    """Close ``f`` after a failed write: its buffer cannot be written either (the file keeps what reached it)."""
    with contextlib.suppress(OSError):
        f.close()


def _hash_prefix(part: Path, size: int, hashers: dict[str, Any]) -> None:
    with open(part, "rb") as f:
        left = size
        while left and (block := f.read(min(_HASH_BLOCK, left))):
            left -= len(block)
            for h in hashers.values():
                h.update(block)


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if not match:
        return None, None
    total = match.group(3)
    return int(match.group(1)), None if total == "*" else int(total)


def _without_query(url: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(query="", fragment=""))


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _is_timeout(error: BaseException) -> bool:
    return isinstance(error, (TimeoutError, socket.timeout))


def _is_unreachable(reason: object) -> bool:
    """A failure to reach any server at all (refused, no route, DNS, connect timeout), not a server's answer."""
    if isinstance(reason, (ConnectionRefusedError, socket.gaierror, TimeoutError)):
        return True
    import errno

    return isinstance(reason, OSError) and reason.errno in (
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.EADDRNOTAVAIL,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
    )


def _reason_text(reason: object) -> str:
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host name ({reason.strerror})"
    if isinstance(reason, TimeoutError):
        return "connection timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _missing_message(source: Source, final: Path, reason: str, details: str = "") -> str:
    if source.checksum:
        check = f"it will be checked against {source.checksum}"
    else:
        record = read_record(source)
        check = (
            f"it will be checked against {record.checksum}, recorded at its first download"
            if record is not None
            else "no checksum is published: its sha256 will be recorded and checked on every later use"
        )
    mirrors = f" (or a mirror: {', '.join(source.urls[1:])})" if len(source.urls) > 1 else ""
    lines = [f"{source.name}: {reason}, and {source.filename} is not in the cache{':' if details else '.'}"]
    if details:
        lines.append(details)
    lines += [
        f"Download {source.urls[0]}{mirrors} on a machine with network access and put the file at",
        f"  {final}",
        f"({check}), or pass the path of a local copy to irv2.load.",
    ]
    return "\n".join(lines)


# -- presentation ----------------------------------------------------------------------------------------


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@functools.cache
def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"irv2/{version('irv2')}"
    except PackageNotFoundError:
        return "irv2/unknown"
