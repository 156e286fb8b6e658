"""A download into a cache folder whose disk fills up, from a real HTTP server on 127.0.0.1: the ``.part`` keeps
what it can be resumed from, the message names it and says how much room the rest needs, and a run with room
finishes the download (with a Range request where the server takes one). Nothing unverified is ever left under
the artifact's name."""

from __future__ import annotations

import errno
import os

import pytest
from hub_helpers import Route, make_source, md5, sha256

from disk_full_support import FullDisk
from irv2 import atomic
from irv2.cli.main import main
from irv2.errors import DiskFullError
from irv2.hub import artifact_path, download, fetch, record_path
from irv2.hub.cache import part_path


@pytest.fixture
def small_disk(monkeypatch):
    """The cache folder's disk with room for 100,000 bytes of the download (a third of ``payload``)."""
    disk = FullDisk(free=100_000)
    monkeypatch.setattr(download, "open", disk.open, raising=False)
    return disk


def test_a_full_disk_keeps_the_bytes_and_the_next_run_resumes(server, payload, small_disk):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], md5(payload))
    part = part_path(source)
    with pytest.raises(DiskFullError) as caught:
        fetch(source, progress=False)
    assert small_disk.failures
    assert str(caught.value) == (
        f"{part}: no space left on the device. Kept: the 100.0 kB of 300.0 kB downloaded so far, in this file. "
        f"To resume: free 200.0 kB or more in {part.parent} and run it again: the download resumes from there "
        "(or set IRV2_HOME to a folder on a disk with room: it starts over there)."
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert part.read_bytes() == payload[:100_000]  # exactly what fitted: a prefix to resume from
    assert not artifact_path(source).exists() and not record_path(source).exists()
    assert server.count() == 1, "a full disk is no reason to try the mirrors"

    small_disk.free = len(payload)  # room made
    assert fetch(source, progress=False).read_bytes() == payload
    assert server.requests[-1].range == "bytes=100000-"
    assert not part.exists()


def test_a_server_that_cannot_resume_gets_its_partial_file_deleted(server, payload, small_disk):
    server.routes["/w"] = Route(payload, ranges=False)
    source = make_source([server.url("/w")], sha256(payload))
    part = part_path(source)
    with pytest.raises(DiskFullError) as caught:
        fetch(source, progress=False)
    assert str(caught.value) == (
        f"{part}: no space left on the device. Kept: nothing, the partial file was deleted (this server cannot "
        f"resume a download). To resume: free 300.0 kB or more in {part.parent} and run it again: the download "
        "starts over (or set IRV2_HOME to a folder on a disk with room)."
    )
    assert list(part.parent.iterdir()) == [part.parent / "weights.bin.lock"]  # the space given back


def test_a_failed_sync_trusts_none_of_the_bytes(server, payload, monkeypatch):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], None)  # trust on first use: a damaged file would be trusted forever

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(DiskFullError, match=r"Kept: nothing, the partial file was deleted \(a failed sync leaves"):
        fetch(source, progress=False)
    assert not part_path(source).exists() and not artifact_path(source).exists()


def test_no_room_for_the_record_keeps_the_verified_file(server, payload, monkeypatch):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], md5(payload))
    disk = FullDisk(free=10)
    monkeypatch.setattr(atomic, "open", disk.open, raising=False)  # the record goes through irv2.atomic
    with pytest.raises(DiskFullError) as caught:
        fetch(source, progress=False)
    final = artifact_path(source)
    assert str(caught.value) == (
        f"{record_path(source)}: no space left on the device. Kept: the verified download, {final}; not its "
        "record. To resume: free some space and run it again: the file is checked, then recorded."
    )
    assert final.read_bytes() == payload and not record_path(source).exists()
    disk.free = 10_000  # room made
    assert fetch(source, progress=False) == final and record_path(source).exists()
    assert server.count() == 1, "the verified file is used, not downloaded again"


def test_the_command_line_says_it_in_one_line(server, payload, small_disk, capsys):
    server.routes["/dir/model.bin"] = Route(payload)
    assert main(["download", server.url("/dir/model.bin")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("irv2: error: ") and captured.err.count("\n") == 1
    assert "model.bin.part: no space left on the device. Kept: the 100.0 kB of 300.0 kB" in captured.err
    assert "To resume: free 200.0 kB or more in " in captured.err
