"""Dataset discovery, CSV lists, unreadable files and the stratified split (fast, no network)."""

from __future__ import annotations

import pytest
from PIL import Image
from shapes import CLASSES, write_dataset

from irv2 import DatasetError
from irv2.finetune.data import find_unreadable, list_images, split_dataset
from listing_support import refuse_listing


def _image(path, colour=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 20), colour).save(path)
    return path


def _no_scan(paths):
    return []


def test_folder_classes_sorted_hidden_ignored(tmp_path):
    for name in ("b_dogs/x.png", "a_cats/deep/y.JPG", "a_cats/.hidden.png", ".git/z.png", "a_cats/notes.txt"):
        (_image(tmp_path / name) if name.endswith(("png", "JPG")) else (tmp_path / name).write_text("x"))
    (tmp_path / "loose.png").write_bytes(b"")  # not in a class folder: ignored
    items = list_images(tmp_path)
    assert [(p.split("/")[-1], c) for p, c in items] == [("y.JPG", "a_cats"), ("x.png", "b_dogs")]


def test_stratified_split_is_seeded_and_keeps_every_class(tmp_path):
    write_dataset(tmp_path, 10, classes=CLASSES[:3])
    first = split_dataset(tmp_path, val_fraction=0.3, seed=7, scan=_no_scan)
    again = split_dataset(tmp_path, val_fraction=0.3, seed=7, scan=_no_scan)
    other = split_dataset(tmp_path, val_fraction=0.3, seed=8, scan=_no_scan)
    assert first == again and first.val != other.val
    assert first.classes == sorted(CLASSES[:3])
    assert first.counts("val") == dict.fromkeys(first.classes, 3) and first.counts("train") == dict.fromkeys(
        first.classes, 7
    )
    assert not {s.path for s in first.train} & {s.path for s in first.val}
    for sample in first.train + first.val:
        assert sample.path.split("/")[-2] == first.classes[sample.label]


def test_tiny_fraction_still_validates_every_class(tmp_path):
    write_dataset(tmp_path, 4, classes=CLASSES[:2])
    split = split_dataset(tmp_path, val_fraction=0.01, scan=_no_scan)
    assert split.counts("val") == dict.fromkeys(split.classes, 1)


def test_csv_with_header_relative_paths_and_missing_file(tmp_path):
    images = tmp_path / "imgs"
    for i in range(3):
        _image(images / f"r{i}.png", (255, 0, 0))
        _image(images / f"g{i}.png", (0, 255, 0))
    rows = ["path,label"] + [f"imgs/r{i}.png,red" for i in range(3)] + [f"imgs/g{i}.png, green" for i in range(3)]
    rows.append("imgs/gone.png,green")
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    split = split_dataset(csv_path, val_fraction=0.34)
    assert split.classes == ["green", "red"]
    assert [(s.path, s.reason) for s in split.skipped] == [(str(images / "gone.png"), "no such file")]
    assert all(s.path.startswith(str(images)) for s in split.train + split.val)
    assert split.counts("train") == {"green": 2, "red": 2} and split.counts("val") == {"green": 1, "red": 1}


def test_malformed_csv_row(tmp_path):
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("a.png,cat\nb.png\n")
    with pytest.raises(DatasetError, match=r"bad\.csv, line 2: expected 'path,label'"):
        list_images(csv_path)


def test_unreadable_images_are_found_with_a_reason(tmp_path):
    good = _image(tmp_path / "good.png")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:40])
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    skipped = find_unreadable([str(good), str(truncated), str(text), str(tmp_path / "nope.png")])
    assert [s.path for s in skipped] == [str(truncated), str(text), str(tmp_path / "nope.png")]
    assert all(s.reason and not s.reason.startswith(str(tmp_path)) for s in skipped)


def test_empty_class_folder(tmp_path):
    write_dataset(tmp_path, 3, classes=CLASSES[:2])
    (tmp_path / "zebra").mkdir()
    with pytest.raises(DatasetError, match="class 'zebra' has no images"):
        split_dataset(tmp_path)


def test_single_class(tmp_path):
    write_dataset(tmp_path, 3, classes=CLASSES[:1])
    with pytest.raises(DatasetError, match="single class"):
        split_dataset(tmp_path)


def test_too_few_images_to_split(tmp_path):
    write_dataset(tmp_path, 3, classes=CLASSES[:2])
    write_dataset(tmp_path, 1, classes=CLASSES[2:3])
    with pytest.raises(DatasetError, match=f"class '{CLASSES[2]}' has 1 readable image; too few to split"):
        split_dataset(tmp_path)


def test_class_whose_images_are_all_unreadable(tmp_path):
    write_dataset(tmp_path, 3, classes=CLASSES[:2])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError, match="class 'broken' has no readable images"):
        split_dataset(tmp_path)


def test_no_classes_and_missing_source(tmp_path):
    with pytest.raises(DatasetError, match="no class folders"):
        split_dataset(tmp_path)
    with pytest.raises(DatasetError, match="no such folder or CSV"):
        split_dataset(tmp_path / "absent")


def test_separate_validation_set(tmp_path):
    write_dataset(tmp_path / "train", 3, classes=CLASSES[:2])
    write_dataset(tmp_path / "val", 2, seed=5, classes=CLASSES[:2])
    split = split_dataset(tmp_path / "train", val=tmp_path / "val", scan=_no_scan)
    assert len(split.train) == 6 and len(split.val) == 4
    write_dataset(tmp_path / "val", 1, seed=6, classes=CLASSES[2:3])
    with pytest.raises(DatasetError, match="not among the training classes"):
        split_dataset(tmp_path / "train", val=tmp_path / "val", scan=_no_scan)


def test_a_folder_that_cannot_be_listed_is_an_error_not_fewer_images(tmp_path, monkeypatch):
    write_dataset(tmp_path, per_class=2)
    hidden = tmp_path / CLASSES[0] / "more"
    hidden.mkdir()
    refuse_listing(monkeypatch, hidden)
    with pytest.raises(DatasetError, match=f"{hidden}: cannot list this folder of class '{CLASSES[0]}'"):
        list_images(tmp_path)
    unlisted = []
    assert len(list_images(tmp_path, unlisted=unlisted)) == 2 * len(CLASSES)
    assert unlisted == [(str(hidden), CLASSES[0], "Permission denied")]
