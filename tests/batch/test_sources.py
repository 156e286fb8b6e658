"""Inputs beyond folders and globs: ``@LIST`` files of paths and tar shards in WebDataset layout."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

from irv2.batch import decode_batches, expand_inputs
from irv2.preprocessing import Preprocessing

RECIPE = Preprocessing()  # TF-Slim's evaluation preprocessing at 299 x 299, as the TF-Hub weights record it


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_list_file_reads_paths_in_order(image_folder, tmp_path):
    _, paths = image_folder
    listing = tmp_path / "paths.txt"
    listing.write_text("\n".join([paths[3], "", paths[1], str(tmp_path / "gone.jpg")]) + "\n")
    inputs = expand_inputs([f"@{listing}", paths[0]])
    assert [i.path for i in inputs] == [paths[3], paths[1], str(tmp_path / "gone.jpg"), paths[0]]
    assert [i.error is None for i in inputs] == [True, True, False, True]
    (missing,) = expand_inputs([f"@{tmp_path / 'no-list.txt'}"])
    assert missing.path == f"@{tmp_path / 'no-list.txt'}" and "cannot read this list" in missing.error


def test_tar_shard_members_decode_like_files(image_folder, tmp_path):
    _, paths = image_folder
    shard = tmp_path / "shard-000.tar"
    with tarfile.open(shard, "w") as tar:
        for key, path in (("s0", paths[0]), ("s1", paths[7]), ("s2", paths[2])):  # paths[7] is truncated
            data = Path(path).read_bytes()
            _add(tar, f"{key}.{path.rsplit('.', 1)[1]}", data)
            _add(tar, f"{key}.cls", b"3")  # WebDataset's label member: not an image, skipped
        _add(tar, "._s3.jpg", b"resource fork")  # hidden: skipped as in folders
    inputs = expand_inputs([str(shard)])
    assert [i.path for i in inputs] == [f"{shard}::s0.png", f"{shard}::s1.jpg", f"{shard}::s2.jpg"]
    decoded = [d for batch in decode_batches(inputs, 2, RECIPE, workers=2) for d in batch]
    expected = [
        d
        for batch in decode_batches(expand_inputs([paths[0], paths[7], paths[2]]), 3, RECIPE, workers=0)
        for d in batch
    ]
    for got, want in zip(decoded, expected, strict=True):
        assert (got.error is None) == (want.error is None)
        if want.image is not None:
            np.testing.assert_array_equal(got.image, want.image)
    assert "truncated" in decoded[1].error and not decoded[1].error.startswith("<bytes>")


def test_broken_shards_become_error_rows_in_place(image_folder, tmp_path):
    _, paths = image_folder
    whole = tmp_path / "whole.tar"
    with tarfile.open(whole, "w") as tar:
        for i in range(4):
            _add(tar, f"{i:03d}.jpg", Path(paths[1]).read_bytes())
    with tarfile.open(whole) as tar:
        third = tar.getmembers()[2]
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[: third.offset_data + third.size // 2])  # ends inside the third image
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"this is not a tar file at all" * 40)
    packed = tmp_path / "packed.tar.gz"
    packed.write_bytes(b"")
    inputs = expand_inputs([str(cut), str(garbage), str(packed), paths[0]])
    decoded = [d for batch in decode_batches(inputs, 3, RECIPE, workers=2) for d in batch]
    errors = [(d.input.path, d.error) for d in decoded]
    assert errors[:2] == [(f"{cut}::000.jpg", None), (f"{cut}::001.jpg", None)]  # read up to the break
    assert errors[-1] == (paths[0], None)
    broken = dict(errors[2:-1])
    assert "the tar shard ends inside this member" in broken.pop(
        f"{cut}::002.jpg", "the tar shard ends inside this member"
    )
    assert "cannot read this tar shard" in broken[str(garbage)]
    assert "compressed tar shards are not supported" in broken[str(packed)]
