"""Where evaluation images and their labels come from: the layouts ``irv2 evaluate --data`` reads.

* ``folders``: one subfolder per class, images inside at any depth: ImageNet's ``val/n01440764/*.JPEG`` (folder
  names are synsets, as ImageFolder tools arrange it) or a fine-tuned module's own classes (``cat/``, ``dog/``),
  read exactly as ``irv2 finetune`` reads its data.
* ``csv``: a CSV of ``path,label`` rows (relative paths from the CSV's folder), as ``irv2 finetune`` reads it.
* ``kaggle``: a folder of images with Kaggle's ``LOC_val_solution.csv`` (``ImageId,PredictionString``): an image
  ``ImageId.JPEG`` is labelled with the first synset of its ``PredictionString``.
* ``devkit``: a folder of ``ILSVRC2012_val_NNNNNNNN.JPEG`` with the devkit's
  ``ILSVRC2012_validation_ground_truth.txt`` (line ``n`` is image ``n``'s class ID) and the ID → synset map of
  its ``meta.mat`` or ``--synsets`` (:mod:`irv2.evaluate.devkit`).

A flat folder without ``--labels`` is searched for either label file, in the folder, its parents (up to
:data:`SEARCH_DEPTH` levels) and their ``ILSVRC2012_devkit_t12/data/``, where Kaggle's download and the
devkit put them. Labels here are strings: synsets, or class names; :mod:`irv2.evaluate.classes` matches them
with the weights' classes. Every image a label file is meant to cover must have a label; label lines for images
that are not there are fine (an evaluation of part of the validation set).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..batch.inputs import expand_inputs, is_image_name
from ..errors import DatasetError, LabelMismatchError, LayoutError, OptionError
from ..finetune.data import list_images
from .devkit import GROUND_TRUTH, read_ground_truth, synset_map_for

KAGGLE_SOLUTION = "LOC_val_solution.csv"
LABEL_FILES = (KAGGLE_SOLUTION, GROUND_TRUTH)
DEVKIT_DATA = Path("ILSVRC2012_devkit_t12", "data")
SEARCH_DEPTH = 4  # Kaggle: ILSVRC/Data/CLS-LOC/val/ is four levels below LOC_val_solution.csv
LAYOUTS = ("folders", "csv", "kaggle", "devkit")
_KAGGLE_HEADER = ["imageid", "predictionstring"]
_IMAGE_NUMBER = re.compile(r"(\d+)$")
_SHOWN = 3  # examples named in a mismatch message


@dataclass(frozen=True)
class LabelledImages:
    """Images to evaluate, each with its label, in a stable order.

    Attributes:
        paths: the image files (broken ones included: the run counts them as errors).
        labels: one label per path: a synset (``n01440764``) or a fine-tuned module's class name.
        layout: one of :data:`LAYOUTS`.
        data: the folder or CSV the images came from.
        label_file: the Kaggle or devkit label file, when the layout has one.
        synset_map: the devkit layout's ID → synset map (``meta.mat`` or the ``--synsets`` file).
    """

    paths: list[str]
    labels: list[str]
    layout: str
    data: str
    label_file: str | None = None
    synset_map: str | None = None


def read_layout(
    data: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    synsets: str | os.PathLike[str] | None = None,
) -> LabelledImages:
    """The labelled images of ``data`` (a folder or a CSV), with ``labels`` (a Kaggle or devkit label file) and
    ``synsets`` (the devkit layout's ID → synset map, instead of ``meta.mat``).

    Raises:
        LayoutError: ``data`` is in no layout irv2 reads, or ``labels`` in no format it reads.
        LabelMismatchError: ``labels`` does not match the images of ``data`` (naming both).
    """
    root = Path(data).expanduser()
    if root.is_file():
        if labels is not None:
            raise OptionError(f"labels: {root} is a CSV of path,label rows already; --labels goes with a folder")
        _refuse_label_file_as_data(root)
        items = _listed(root)
        return _checked(_from_pairs(items, "csv", root), synsets)
    if not root.is_dir():
        raise LayoutError(f"{root}: no such folder or CSV file")
    if labels is None:
        if _class_folders(root):
            return _checked(_from_pairs(_listed(root), "folders", root), synsets)
        labels = _find_label_file(root)
    return _with_label_file(root, Path(labels).expanduser(), synsets)


def _checked(images: LabelledImages, synsets: str | os.PathLike[str] | None) -> LabelledImages:
    if synsets is not None:
        raise OptionError(
            f"synsets: --synsets maps the devkit's class IDs to synsets; the {images.layout} layout of "
            f"{images.data} names its classes itself"
        )
    return images


def _listed(source: Path) -> list[tuple[str, str]]:
    try:
        return list_images(source)
    except LayoutError:
        raise
    except DatasetError as exc:  # finetune's reader names the folder or CSV and the problem
        raise LayoutError(str(exc)) from None


def _from_pairs(items: list[tuple[str, str]], layout: str, root: Path) -> LabelledImages:
    return LabelledImages([p for p, _ in items], [label for _, label in items], layout, os.fspath(root))


def _class_folders(root: Path) -> bool:
    """Whether ``root`` has subfolders holding images (the folders layout); hidden ones do not count."""
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.name.startswith(".") and _has_image(entry):
            return True
    return False


def _has_image(folder: Path) -> bool:
    for _, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(is_image_name(name) and not name.startswith(".") for name in filenames):
            return True
    return False


def _find_label_file(root: Path) -> Path:
    folders = [root, *list(root.resolve().parents)[:SEARCH_DEPTH]]
    for folder in folders:
        for place in (folder, folder / DEVKIT_DATA):
            for name in LABEL_FILES:
                if (place / name).is_file():
                    return place / name
    images = sum(1 for _ in _flat_images(root))
    what = f"a folder of {images} images without class subfolders" if images else "a folder without images"
    raise LayoutError(
        f"{root}: {what}, and no label file for it: irv2 reads one subfolder per class (ImageNet's "
        f"val/n01440764/*.JPEG, or a fine-tuned module's classes), a CSV of path,label rows, or a flat folder "
        f"with Kaggle's {KAGGLE_SOLUTION} or the devkit's {GROUND_TRUTH} (found in the folder, up to "
        f"{SEARCH_DEPTH} folders above it, or in their {DEVKIT_DATA}/; else pass --labels FILE)"
    )


def _flat_images(root: Path) -> list[str]:
    return [item.path for item in expand_inputs([os.fspath(root)]) if item.error is None]


def _with_label_file(root: Path, label_file: Path, synsets: str | os.PathLike[str] | None) -> LabelledImages:
    kind = _label_format(label_file)
    paths = _flat_images(root)
    if not paths:
        raise LayoutError(f"{root}: no images in this folder (for the labels of {label_file})")
    if kind == "kaggle":
        if synsets is not None:
            raise OptionError(f"synsets: --synsets maps the devkit's class IDs; {label_file} names synsets itself")
        table = _read_kaggle(label_file)
        keys = [Path(p).stem for p in paths]
        missing = [p for p, key in zip(paths, keys, strict=True) if key not in table]
        _refuse_missing(missing, paths, label_file, root, "have no row there (rows are matched by file name)")
        return LabelledImages(paths, [table[k] for k in keys], "kaggle", os.fspath(root), os.fspath(label_file))
    ids = read_ground_truth(label_file)
    mapping, map_file = synset_map_for(label_file, synsets)
    numbers = [_image_number(p) for p in paths]
    missing = [p for p, n in zip(paths, numbers, strict=True) if n is None or not 1 <= n <= len(ids)]
    why = (
        f"have no line there (it labels images 1 to {len(ids)}; images are matched by the number that ends "
        "their name, as in ILSVRC2012_val_00000001.JPEG)"
    )
    _refuse_missing(missing, paths, label_file, root, why)
    labelled = [ids[n - 1] for n in numbers]  # type: ignore[index]
    unknown = sorted({i for i in labelled if i not in mapping})
    if unknown:
        raise LabelMismatchError(
            f"{label_file} labels images in {root} with class IDs that {map_file} does not have: "
            f"{', '.join(map(str, unknown[:_SHOWN]))}{' ...' if len(unknown) > _SHOWN else ''}"
        )
    return LabelledImages(
        paths, [mapping[i] for i in labelled], "devkit", os.fspath(root), os.fspath(label_file), map_file
    )


def _refuse_missing(missing: list[str], paths: list[str], label_file: Path, root: Path, why: str) -> None:
    if not missing:
        return
    shown = ", ".join(os.path.basename(p) for p in missing[:_SHOWN]) + (" ..." if len(missing) > _SHOWN else "")
    raise LabelMismatchError(
        f"{label_file} does not match the images in {root}: {len(missing)} of {len(paths)} images {why}: {shown}"
    )


def _image_number(path: str) -> int | None:
    match = _IMAGE_NUMBER.search(Path(path).stem)
    return int(match[1]) if match else None


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
    raise LayoutError(
        f"{path}: not a label file irv2 reads (its first line is {first[:60]!r}): expected Kaggle's "
        f"{KAGGLE_SOLUTION} (a header ImageId,PredictionString) or the devkit's {GROUND_TRUTH} (one class ID per "
        "line); a CSV of path,label rows goes to --data itself"
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


def _refuse_label_file_as_data(path: Path) -> None:
    if path.name in LABEL_FILES:
        raise LayoutError(f"{path} is a label file: pass the folder of images as --data and this file as --labels FILE")
