"""Which images train and validate: class discovery, CSV lists, unreadable files, the stratified split.

Two ways to describe a dataset:

* a folder with one subfolder per class (``DATA/cat/*.jpg``, ``DATA/dog/*.png``); images are found
  recursively inside each class folder; hidden entries (``.name``) are ignored, as are files directly in
  ``DATA``;
* a CSV file of ``path,label`` rows (a ``path,label`` header is optional); relative paths are resolved
  against the CSV's own folder, so the CSV and its images can move together.

Classes are sorted by name: class ``i`` of the new head is ``classes[i]``. Every listed image is decoded
once before training; files that cannot be read (missing, truncated, not an image) are skipped and
reported with the reason, never silently dropped.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError, Irv2Error
from ..preprocessing.decode import decode_native

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Sample:
    """One labelled image: its path and the index of its class."""

    path: str
    label: int


@dataclass(frozen=True)
class Skipped:
    """An image left out of training, and why."""

    path: str
    reason: str


@dataclass
class DataSplit:
    """The classes (index order of the new head) and the images of each part."""

    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    skipped: list[Skipped] = field(default_factory=list)

    def counts(self, part: str) -> dict[str, int]:
        """Images per class name in ``part`` (``"train"`` or ``"val"``)."""
        counter = Counter(s.label for s in getattr(self, part))
        return {name: counter.get(i, 0) for i, name in enumerate(self.classes)}


def list_images(
    source: str | os.PathLike[str], *, unlisted: list[tuple[str, str, str]] | None = None
) -> list[tuple[str, str]]:
    """``(path, class name)`` for every image a folder or CSV lists, in a stable order.

    A folder inside a class folder that cannot be listed (no permission, gone) is an error: with ``unlisted``
    it is appended there as ``(folder, class name, reason)`` instead, for a caller that counts it.

    Raises:
        DatasetError: ``source`` does not exist, a CSV row is malformed, a class folder holds no images, or a
            folder cannot be listed (without ``unlisted``).
    """
    source = Path(source)
    if source.is_dir():
        return _from_folder(source, unlisted)
    if source.is_file():
        return _from_csv(source)
    raise DatasetError(f"{source}: no such folder or CSV file")


def _from_folder(root: Path, unlisted: list[tuple[str, str, str]] | None) -> list[tuple[str, str]]:
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DatasetError(f"{root}: no class folders (expected one subfolder of images per class)")
    items = []
    for class_dir in class_dirs:
        failures: list[tuple[str, str]] = []
        found = sorted(_walk_images(class_dir, failures))
        if failures and unlisted is None:
            folder, reason = failures[0]
            raise DatasetError(f"{folder}: cannot list this folder of class {class_dir.name!r} ({reason})")
        if unlisted is not None:
            unlisted += [(folder, class_dir.name, reason) for folder, reason in failures]
        if not found and not failures:
            raise DatasetError(
                f"{class_dir}: class {class_dir.name!r} has no images "
                f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))}); remove the folder or add images"
            )
        items += [(path, class_dir.name) for path in found]
    return items


def _walk_images(folder: Path, failures: list[tuple[str, str]]) -> list[str]:
    """The images below ``folder``; each folder that cannot be listed goes to ``failures`` as (path, reason)
    (os.walk would skip it without a word)."""

    def on_error(error: OSError) -> None:
        failures.append((error.filename or os.fspath(folder), error.strerror or str(error)))

    found = []
    for directory, subdirs, files in os.walk(folder, onerror=on_error):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        found += [
            os.path.join(directory, f)
            for f in files
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
        ]
    return found


def _from_csv(path: Path) -> list[tuple[str, str]]:
    base = path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read the CSV ({exc})") from None
    items = []
    for line, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if line == 1 and [c.lower() for c in cells] == ["path", "label"]:
            continue
        if len(cells) != 2 or not cells[0] or not cells[1]:
            raise DatasetError(f"{path}, line {line}: expected 'path,label', got {','.join(row)!r}")
        image = Path(cells[0]).expanduser()
        items.append((os.path.normpath(image if image.is_absolute() else base / image), cells[1]))
    if not items:
        raise DatasetError(f"{path}: the CSV lists no images (expected rows of 'path,label')")
    return items


def find_unreadable(paths: Sequence[str], *, threads: int | None = None) -> list[Skipped]:
    """Decode every image (in threads: Pillow releases the GIL) and return those that fail, with why."""

    def check(path: str) -> Skipped | None:
        if not os.path.isfile(path):
            return Skipped(path, "no such file")
        try:
            decode_native(path)
        except (Irv2Error, OSError, ValueError, MemoryError) as exc:
            message = str(exc) or type(exc).__name__
            return Skipped(path, message.removeprefix(f"{path}: "))
        return None

    with ThreadPoolExecutor(max_workers=threads or min(8, os.cpu_count() or 1)) as pool:
        return [s for s in pool.map(check, paths) if s is not None]


def split_dataset(
    data: str | os.PathLike[str],
    *,
    val: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    scan: Callable[[Sequence[str]], list[Skipped]] = find_unreadable,
) -> DataSplit:
    """Find the classes and images of ``data`` (and ``val``), drop unreadable files, split train/val.

    Without ``val``, each class is split on its own (stratified): ``max(1, round(val_fraction * n))`` of
    its readable images, chosen by a generator seeded with ``seed``, go to validation and at least one
    stays for training. The result depends only on the file list and ``seed``.

    ``scan`` finds unreadable files (under torchrun, each process checks its shard and they share).

    Raises:
        DatasetError: no classes, a single class, a class without readable images, a class too small
            to split, or validation classes that training does not have.
    """
    items = list_images(data)
    val_items = list_images(val) if val is not None else []
    skipped = scan([p for p, _ in items] + [p for p, _ in val_items])
    bad = {s.path for s in skipped}
    classes = sorted({name for _, name in items})
    if len(classes) < 2:
        raise DatasetError(f"{data}: found a single class {classes}; fine-tuning a classifier needs at least two")
    index = {name: i for i, name in enumerate(classes)}
    by_class: dict[int, list[str]] = {i: [] for i in range(len(classes))}
    for path, name in items:
        if path not in bad:
            by_class[index[name]].append(path)
    for i, paths in by_class.items():
        if not paths:
            raise DatasetError(f"{data}: class {classes[i]!r} has no readable images (all were skipped)")
    if val is not None:
        unknown = sorted({name for _, name in val_items} - set(classes))
        if unknown:
            raise DatasetError(f"{val}: validation classes {unknown} are not among the training classes {classes}")
        train = [Sample(p, i) for i, paths in by_class.items() for p in paths]
        held_out = [Sample(p, index[name]) for p, name in val_items if p not in bad]
        if not held_out:
            raise DatasetError(f"{val}: no readable validation images")
        return DataSplit(classes, train, held_out, skipped)
    train, held_out = _stratified(by_class, classes, val_fraction, seed, data)
    return DataSplit(classes, train, held_out, skipped)


def _stratified(
    by_class: dict[int, list[str]], classes: list[str], fraction: float, seed: int, data: object
) -> tuple[list[Sample], list[Sample]]:
    rng = np.random.default_rng(seed)
    train: list[Sample] = []
    held_out: list[Sample] = []
    for label, paths in by_class.items():
        if len(paths) < 2:
            raise DatasetError(
                f"{data}: class {classes[label]!r} has {len(paths)} readable image; too few to split "
                "(each class needs one for training and one for validation; add images or pass --val)"
            )
        order = rng.permutation(len(paths))
        n_val = min(max(1, round(fraction * len(paths))), len(paths) - 1)
        held_out += [Sample(paths[j], label) for j in sorted(order[:n_val])]
        train += [Sample(paths[j], label) for j in sorted(order[n_val:])]
    return train, held_out
