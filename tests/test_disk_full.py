"""A full disk met by irv2.atomic: a DiskFullError that names the file and says what was kept and how to go on,
with nothing left half-written; other write errors pass unchanged. (Each writer's own words: tests/batch,
tests/engine, tests/export and tests/hub, test_*disk_full*.)"""

from __future__ import annotations

import errno
import os

import pytest

import irv2
from disk_full_support import FullDisk
from irv2 import atomic
from irv2.atomic import atomic_path, write_text
from irv2.cli.common import os_failure
from irv2.disk_full import on_disk_full, size_text
from irv2.errors import CommandError, DiskFullError


def test_a_full_disk_keeps_the_old_file_and_says_so(monkeypatch, tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("the old metrics")
    disk = FullDisk(free=10)
    monkeypatch.setattr(atomic, "open", disk.open, raising=False)
    with pytest.raises(DiskFullError) as caught:
        write_text(target, "the new metrics, longer than the room left")
    error = caught.value
    assert disk.failures  # the disk did fill up (the write, then the flushes on closing, are refused)
    assert str(error) == (
        f"{target}: no space left on the device. Kept: what was there before is unchanged. "
        "To resume: free some space and run it again."
    )
    # Caught as what it is by `except irv2.Irv2Error` and by `except OSError`, with the kernel's errno.
    assert isinstance(error, irv2.Irv2Error) and isinstance(error, OSError)
    assert (error.errno, error.filename, error.path) == (errno.ENOSPC, str(target), str(target))
    assert error.__cause__ is None and error.__suppress_context__  # no traceback from inside the writer
    assert target.read_text() == "the old metrics"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # the unfinished write is gone


def test_a_used_up_quota_on_a_new_file(monkeypatch, tmp_path):
    target = tmp_path / "new.json"
    monkeypatch.setattr(atomic, "open", FullDisk(code=errno.EDQUOT).open, raising=False)
    with pytest.raises(DiskFullError, match=r"new\.json: the disk quota is used up\. Kept: nothing was written there"):
        write_text(target, "{}")
    assert list(tmp_path.iterdir()) == []


def test_a_sync_that_finds_the_disk_full(monkeypatch, tmp_path):
    """Some file systems (NFS, delayed allocation) report a full disk only when the data is flushed."""
    target = tmp_path / "export"

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(DiskFullError, match="export: no space left on the device"), atomic_path(target) as scratch:
        scratch.mkdir()
        (scratch / "model.bin").write_bytes(b"weights")
    assert list(tmp_path.iterdir()) == []


def test_other_write_errors_pass_unchanged(tmp_path):
    with pytest.raises(OSError) as caught, atomic_path(tmp_path / "x") as scratch:
        scratch.write_bytes(b"x")
        raise OSError(errno.EIO, "Input/output error")
    assert not isinstance(caught.value, DiskFullError) and caught.value.errno == errno.EIO
    assert list(tmp_path.iterdir()) == []


def test_the_caller_says_what_its_work_kept(monkeypatch, tmp_path):
    monkeypatch.setattr(atomic, "open", FullDisk().open, raising=False)
    part = tmp_path / "part-1.parquet"
    with pytest.raises(DiskFullError) as caught, on_disk_full(tmp_path, kept=lambda: "3 parts", resume="rerun"):
        write_text(part, "rows")
    # The file that could not be written, from irv2.atomic; what was kept and what to do, from the caller.
    assert str(caught.value) == f"{part}: no space left on the device. Kept: 3 parts. To resume: rerun."
    with pytest.raises(DiskFullError) as caught, on_disk_full(tmp_path / "graph", kept="nothing", resume="rerun"):
        raise OSError(errno.ENOSPC, "No space left on device")  # a writer that bypasses irv2.atomic
    assert caught.value.path == str(tmp_path / "graph")


def test_the_command_line_reports_a_full_disk_as_it_is():
    full = DiskFullError("/x/out.npz", kept="nothing was written there", resume="free some space and run it again")
    assert os_failure(full, "/x/out.npz: cannot write") is full  # not "cannot write (No space left on device)"
    other = os_failure(PermissionError(errno.EACCES, "Permission denied"), "/x/out.npz: cannot write")
    assert isinstance(other, CommandError) and str(other) == "/x/out.npz: cannot write (Permission denied)"


@pytest.mark.parametrize(
    ("size", "text"), [(12, "12 bytes"), (300_000, "300.0 kB"), (236_853_704, "236.9 MB"), (2 * 10**9, "2.0 GB")]
)
def test_sizes_in_messages(size, text):
    assert size_text(size) == text
