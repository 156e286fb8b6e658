"""The validation images in one flat folder (as ``ILSVRC2012_img_val.tar`` unpacks), labelled by a file.

* ``kaggle``: Kaggle's ``LOC_val_solution.csv`` (``ImageId,PredictionString``): an image ``ImageId.JPEG`` is
  labelled with the first synset of its ``PredictionString``.
* ``devkit``: the devkit's ``ILSVRC2012_validation_ground_truth.txt`` (line ``n`` is image ``n``'s class ID) and
  the ID → synset map of its ``meta.mat`` or ``--synsets`` (:mod:`irv2.evaluate.devkit`).
* ``real``: ReaL's ``real.json`` (Beyer et al. 2020, "Are we done with ImageNet?"): entry ``n - 1`` is the list
  of class indices (0-999, the synsets in sorted order) that are right for image ``n``; images with an empty
  list are left out and counted.

The devkit and ReaL files label images by number, so their images must be named as the validation set's are,
``ILSVRC2012_val_00000001.JPEG``, each number once: any other image in the folder (``IMG_0001.jpg``) or a copy
in a subfolder would otherwise be given a validation image's label.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import replace
from pathlib import Path

from ..batch.inputs import Input, expand_inputs
from ..errors import LabelMismatchError, LayoutError, OptionError
from ..labels import imagenet_synsets
from .devkit import GROUND_TRUTH, read_ground_truth, synset_map_for
from .labelled import LabelledImages

KAGGLE_SOLUTION = "LOC_val_solution.csv"
VALIDATION_NAME = re.compile(r"ILSVRC2012_val_(\d{8})")  # the file name's stem
_KAGGLE_HEADER = ["imageid", "predictionstring"]
_SHOWN = 3  # examples named in a mismatch message


def flat_images(root: Path) -> list[Input]:
    """The images below ``root`` (``irv2 classify``'s walk), and folders that could not be listed as inputs
    with an error."""
    return expand_inputs([os.fspath(root)])


def with_label_file(root: Path, label_file: Path, synsets: str | os.PathLike[str] | None) -> LabelledImages:
    """The kaggle or devkit layout of ``root``, by the format of ``label_file``."""
    kind = _label_format(label_file)
    paths, errors = _listed(root, label_file)
    if kind == "kaggle":
        if synsets is not None:
            raise OptionError(f"synsets: --synsets maps the devkit's class IDs; {label_file} names synsets itself")
        table = _read_kaggle(label_file)
        keys = [Path(p).stem for p in paths]
        _refuse_copies(keys, paths, root, label_file)
        missing = [p for p, key in zip(paths, keys, strict=True) if key not in table]
        _refuse_missing(missing, paths, label_file, root, "have no row there (rows are matched by file name)")
        labels = [(table[k],) for k in keys]
        return _labelled(paths, labels, errors, "kaggle", root, label_file)
    ids = read_ground_truth(label_file)
    mapping, map_file = synset_map_for(label_file, synsets)
    numbers = validation_numbers(paths, root, label_file)
    missing = [p for p, n in zip(paths, numbers, strict=True) if not 1 <= n <= len(ids)]
    _refuse_missing(missing, paths, label_file, root, f"have no line there (it labels images 1 to {len(ids)})")
    labelled = [ids[n - 1] for n in numbers]
    unknown = sorted({i for i in labelled if i not in mapping})
    if unknown:
        raise LabelMismatchError(
            f"{label_file} labels images in {root} with class IDs that {map_file} does not have: "
            f"{', '.join(map(str, unknown[:_SHOWN]))}{' ...' if len(unknown) > _SHOWN else ''}"
        )
    return _labelled(paths, [(mapping[i],) for i in labelled], errors, "devkit", root, label_file, map_file)


def with_real_labels(root: Path, real_file: Path) -> LabelledImages:
    """The validation images of ``root`` with ReaL's labels; images whose list is empty are left out and
    counted (``without_labels``)."""
    table = read_real_labels(real_file)
    paths, errors = _listed(root, real_file)
    numbers = validation_numbers(paths, root, real_file)
    missing = [p for p, n in zip(paths, numbers, strict=True) if not 1 <= n <= len(table)]
    _refuse_missing(missing, paths, real_file, root, f"have no entry there (it labels images 1 to {len(table)})")
    synsets = imagenet_synsets(1000)
    kept = [(p, tuple(synsets[i] for i in table[n - 1])) for p, n in zip(paths, numbers, strict=True)]
    without = sum(1 for _, labels in kept if not labels)
    kept = [(p, labels) for p, labels in kept if labels]
    if not kept:
        raise LabelMismatchError(f"{real_file} has an empty list of labels for every image in {root}")
    images = _labelled([p for p, _ in kept], [labels for _, labels in kept], errors, "real", root, real_file)
    return replace(images, without_labels=without)


def read_real_labels(path: Path) -> list[list[int]]:
    """ReaL's ``real.json``: per validation image, in image-number order, its list of right class indices."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LayoutError(f"{path}: cannot read this file ({getattr(exc, 'strerror', None) or exc})") from None
    except ValueError as exc:
        raise LayoutError(f"{path}: not JSON ({exc}); ReaL's real.json is a list of lists of class indices") from None
    if not isinstance(table, list) or not table:
        raise LayoutError(f"{path}: expected ReaL's real.json, a list with one list of class indices per image")
    for number, entry in enumerate(table, start=1):
        if not isinstance(entry, list) or not all(type(i) is int and 0 <= i < 1000 for i in entry):
            raise LayoutError(
                f"{path}: entry {number - 1} (image {number}) is {json.dumps(entry)[:60]}, not a list of class "
                "indices 0-999 (ReaL's real.json gives each image's right classes as positions in the sorted "
                "synset order)"
            )
    return table


def validation_numbers(paths: list[str], root: Path, label_file: Path) -> list[int]:
    """Each image's number, from its name ``ILSVRC2012_val_NNNNNNNN``; LayoutError naming the images that are
    named otherwise, or that repeat a number (a copy in a subfolder), since either would be labelled wrongly."""
    numbers, odd = [], []
    for path in paths:
        match = VALIDATION_NAME.fullmatch(Path(path).stem)
        if match is None:
            odd.append(path)
            continue
        numbers.append(int(match[1]))
    if odd:
        shown = ", ".join(os.path.relpath(p, root) for p in odd[:_SHOWN]) + (" ..." if len(odd) > _SHOWN else "")
        raise LayoutError(
            f"{root}: {len(odd)} of {len(paths)} images are not named as the validation images are "
            f"(ILSVRC2012_val_00000001.JPEG), so {label_file} has no label for them: {shown}. Move them out of "
            "the folder, or evaluate them with labels of their own (class folders or a CSV)"
        )
    _refuse_copies(numbers, paths, root, label_file)
    return numbers


def _refuse_copies(keys: list, paths: list[str], root: Path, label_file: Path) -> None:
    """LayoutError when two images have one key (a copy in a subfolder): the label file labels each once, and
    the copy would be counted twice."""
    first: dict = {}
    for key, path in zip(keys, paths, strict=True):
        if key in first:
            raise LayoutError(
                f"{root}: {first[key]} and {path} are both validation image {key}; {label_file} labels each "
                "image once, so a copy would be counted twice. Remove the copy"
            )
        first[key] = path


def _listed(root: Path, label_file: Path) -> tuple[list[str], dict[str, str]]:
    """The images below ``root``, and the folders that could not be listed with the reason."""
    inputs = flat_images(root)
    paths = [item.path for item in inputs if item.error is None]
    if not paths:
        raise LayoutError(f"{root}: no images in this folder (for the labels of {label_file})")
    return paths, {item.path: item.error for item in inputs if item.error is not None}


def _labelled(
    paths: list[str],
    labels: list[tuple[str, ...]],
    errors: dict[str, str],
    layout: str,
    root: Path,
    label_file: Path,
    map_file: str | None = None,
) -> LabelledImages:
    rows = [*paths, *errors]  # a folder that could not be listed is a row of its own, with no label
    return LabelledImages(
        rows,
        [*labels, *([()] * len(errors))],
        layout,
        os.fspath(root),
        label_file=os.fspath(label_file),
        synset_map=map_file,
        errors=errors,
    )


def _refuse_missing(missing: list[str], paths: list[str], label_file: Path, root: Path, why: str) -> None:
    if not missing:
        return
    shown = ", ".join(os.path.basename(p) for p in missing[:_SHOWN]) + (" ..." if len(missing) > _SHOWN else "")
    raise LabelMismatchError(
        f"{label_file} does not match the images in {root}: {len(missing)} of {len(paths)} images {why}: {shown}"
    )


def _label_format(path: Path) -> str:
    """``kaggle`` or ``devkit``, from the file's first line; LayoutError for anything else."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            first = next((line.strip() for line in f if line.strip()), "")
    except (OSError, UnicodeDecodeError) as exc:
        raise LayoutError(f"{path}: cannot read this label file ({getattr(exc, 'strerror', None) or exc})") from None
    if [cell.strip().lower() for cell in first.split(",")] == _KAGGLE_HEADER:
        return "kaggle"
    if first.isdigit():
        return "devkit"
    hint = " (ReaL's real.json goes to --real-labels)" if first.startswith("[") else ""
    raise LayoutError(
        f"{path}: not a label file irv2 reads (its first line is {first[:60]!r}): expected Kaggle's "
        f"{KAGGLE_SOLUTION} (a header ImageId,PredictionString) or the devkit's {GROUND_TRUTH} (one class ID per "
        f"line); a CSV of path,label rows goes to --data itself{hint}"
    )


def _read_kaggle(path: Path) -> dict[str, str]:
    """ImageId → the first synset of its PredictionString (the image's class; the rest are its boxes)."""
    table = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LayoutError(f"{path}: cannot read this CSV ({exc})") from None
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        tokens = row[1].split() if len(row) == 2 else []
        if not row[0].strip() or not tokens:
            raise LayoutError(f"{path}, line {line}: expected 'ImageId,PredictionString', got {','.join(row)!r}")
        table[row[0].strip()] = tokens[0]
    if not table:
        raise LayoutError(f"{path}: no rows after the header")
    return table
