"""A batch job whose disk fills up while it commits a part or merges: a DiskFullError naming the file, the parts
kept and the rerun that continues, nothing half-written under a trusted name, and a rerun with room that ends
with the same table as a run that never stopped."""

from __future__ import annotations

import os

import pytest

from batch_support import FakeModule
from disk_full_support import FullDisk
from irv2 import atomic
from irv2.atomic import is_temporary
from irv2.batch import expand_inputs
from irv2.batch.job import MANIFEST, SUCCESS
from irv2.batch.runner import BatchJob
from irv2.batch.sharding import Rank
from irv2.errors import DiskFullError
from requires import require

pq = require("pyarrow.parquet", "the batch jobs write Parquet: pip install 'irv2[parquet]'")

CHUNK = 8  # 41 inputs: 6 parts


def _run(inputs, output):
    job = BatchJob("classify", inputs, output, FakeModule(), top_k=3, chunk_size=CHUNK, weights="fake", rank=Rank())
    job.prepare()
    return job.run(batch_size=4, workers=2)


@pytest.fixture(scope="module")
def inputs(image_folder):
    root, _ = image_folder
    return expand_inputs([str(root), str(root / "missing.jpg")])


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """The table of a run that never met a full disk."""
    out = tmp_path_factory.mktemp("reference") / "out.parquet"
    _run(inputs, out)
    return pq.read_table(out)


@pytest.fixture
def disk(monkeypatch):
    """Parts, manifests and merged outputs are written through irv2.atomic: its files go to this disk."""
    disk = FullDisk()
    monkeypatch.setattr(atomic, "open", disk.open, raising=False)
    return disk


def _half_written(folder) -> list[str]:
    return [name for _, _, names in os.walk(folder) for name in names if is_temporary(name)]


def _parts_size(parts: str) -> int:
    return sum(os.path.getsize(os.path.join(parts, n)) for n in os.listdir(parts) if n.startswith("part-"))


def test_a_full_disk_while_committing_a_part(inputs, reference, tmp_path, disk):
    out = tmp_path / "out.parquet"
    parts = f"{out}.parts"
    disk.files_that_fit, disk.free = 3, 100  # the manifest and two parts, then the disk fills up in the third
    with pytest.raises(DiskFullError) as caught:
        _run(inputs, out)
    kept = sorted(n for n in os.listdir(parts) if n.startswith("part-"))
    assert kept == ["part-000000000000-000000000008.parquet", "part-000000000008-000000000016.parquet"]
    assert str(caught.value) == (
        f"{parts}/part-000000000016-000000000024.parquet: no space left on the device. Kept: the 2 parts committed "
        f"so far (16 of 41 inputs, {_parts_size(parts) / 1000:.1f} kB) in {parts}. To resume: free some space and "
        "rerun the same command: it computes only the parts still missing."
    )
    assert caught.value.__suppress_context__ and not out.exists() and _half_written(tmp_path) == []

    disk.free = 10**9  # room made
    again = _run(inputs, out)
    assert (again.skipped, again.processed) == (16, 25)
    assert pq.read_table(out).equals(reference)


def test_a_full_disk_while_merging_into_one_file(inputs, reference, tmp_path, disk):
    out = tmp_path / "out.parquet"
    parts = f"{out}.parts"
    disk.files_that_fit, disk.free = 1 + 6, 100  # the manifest and every part, then the merged file fills it up
    with pytest.raises(DiskFullError) as caught:
        _run(inputs, out)
    size = f"{_parts_size(parts) / 1000:.1f} kB"
    assert str(caught.value) == (
        f"{out}: no space left on the device. Kept: the 6 parts committed so far (41 of 41 inputs, {size}) in "
        f"{parts}. To resume: free {size} or more (the merged file takes about what the parts take; they are "
        "deleted after it) and rerun the same command: it only merges the parts."
    )
    assert not out.exists() and _half_written(tmp_path) == []

    disk.free = 10**9
    again = _run(inputs, out)
    assert (again.skipped, again.processed) == (41, 0)
    assert pq.read_table(out).equals(reference) and not os.path.exists(parts)


def test_a_full_disk_while_marking_a_folder_complete(inputs, reference, tmp_path, disk):
    out = tmp_path / "out"
    disk.files_that_fit = 1 + 6  # no room left for _SUCCESS
    with pytest.raises(DiskFullError) as caught:
        _run(inputs, out)
    assert str(caught.value) == (
        f"{out}/{SUCCESS}: no space left on the device. Kept: the 6 parts committed so far (41 of 41 inputs, "
        f"{_parts_size(out) / 1000:.1f} kB) in {out}. To resume: free some space and rerun the same command: it "
        "checks the parts and marks the job complete."
    )
    assert not (out / SUCCESS).exists() and _half_written(tmp_path) == []

    disk.free = 10**9
    assert _run(inputs, out).summary["rows"] == 41 and (out / SUCCESS).exists()


def test_a_full_disk_before_any_part(inputs, tmp_path, disk):
    out = tmp_path / "out.parquet"
    with pytest.raises(DiskFullError) as caught:
        _run(inputs, out)
    assert str(caught.value) == (
        f"{out}.parts/{MANIFEST}: no space left on the device. Kept: no part of this job yet ({out}.parts holds "
        "none). To resume: free some space and rerun the same command: it computes only the parts still missing."
    )
