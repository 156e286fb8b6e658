"""Where evaluation images and their labels come from: the layouts ``irv2 evaluate --data`` reads.

* ``folders``: one subfolder per class, images inside at any depth: ImageNet's ``val/n01440764/*.JPEG`` (folder
  names are synsets, as ImageFolder tools arrange it, and as ImageNet-Sketch, -A and -R are distributed) or a
  fine-tuned module's own classes (``cat/``, ``dog/``), read exactly as ``irv2 finetune`` reads its data.
* ``imagenet-v2``: ImageNet-V2's folders ``0`` ... ``999``, folder ``i`` being the ``i``-th synset in sorted
  order (:func:`as_imagenet_v2`; found when the weights have ImageNet's classes, or asked for).
* ``csv``: a CSV of ``path,label`` rows (relative paths from the CSV's folder), as ``irv2 finetune`` reads it.
* ``kaggle``, ``devkit`` and ``real``: a flat folder of the validation images, labelled by Kaggle's
  ``LOC_val_solution.csv``, by the devkit's ground truth, or by ReaL's ``real.json``
  (:mod:`irv2.evaluate.flat_layouts`).

A flat folder without ``--labels`` is searched for Kaggle's or the devkit's label file, in the folder, its
parents (up to :data:`SEARCH_DEPTH` levels) and their ``ILSVRC2012_devkit_t12/data/``, where Kaggle's download
and the devkit put them. Labels here are strings: synsets, or class names; :mod:`irv2.evaluate.classes` matches
them with the weights' classes. Every image a label file is meant to cover must have a label; label lines for
images that are not there are fine (an evaluation of part of the validation set).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from ..batch.inputs import is_image_name
from ..errors import DatasetError, LayoutError, OptionError
from ..finetune.data import list_images
from .devkit import GROUND_TRUTH
from .flat_layouts import KAGGLE_SOLUTION, flat_images, with_label_file, with_real_labels
from .labelled import LabelledImages

LABEL_FILES = (KAGGLE_SOLUTION, GROUND_TRUTH)
DEVKIT_DATA = Path("ILSVRC2012_devkit_t12", "data")
SEARCH_DEPTH = 4  # Kaggle: ILSVRC/Data/CLS-LOC/val/ is four levels below LOC_val_solution.csv
LAYOUTS = ("folders", "imagenet-v2", "csv", "kaggle", "devkit", "real")
IMAGENET_V2 = "imagenet-v2"
__all__ = ["LAYOUTS", "LabelledImages", "as_imagenet_v2", "is_imagenet_v2", "read_layout"]
_V2_FOLDER = re.compile(r"0|[1-9]\d{0,2}")  # ImageNet-V2's class folders: 0 to 999, as written by its release


def read_layout(
    data: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    synsets: str | os.PathLike[str] | None = None,
    *,
    real_labels: str | os.PathLike[str] | None = None,
) -> LabelledImages:
    """The labelled images of ``data`` (a folder or a CSV), with ``labels`` (a Kaggle or devkit label file),
    ``synsets`` (the devkit layout's ID → synset map, instead of ``meta.mat``) or ``real_labels`` (ReaL's
    ``real.json``, for the validation images).

    Raises:
        LayoutError: ``data`` is in no layout irv2 reads, or ``labels`` in no format it reads.
        LabelMismatchError: ``labels`` does not match the images of ``data`` (naming both).
    """
    root = Path(data).expanduser()
    if real_labels is not None:
        if labels is not None or synsets is not None:
            raise OptionError("real_labels: ReaL's labels replace --labels and --synsets; give one or the other")
        if not root.is_dir():
            raise LayoutError(f"{root}: no such folder (ReaL labels the validation images of a folder)")
        return with_real_labels(root, Path(real_labels).expanduser())
    if root.is_file():
        if labels is not None:
            raise OptionError(f"labels: {root} is a CSV of path,label rows already; --labels goes with a folder")
        _refuse_label_file_as_data(root)
        return _checked(_from_listing(root, "csv"), synsets)
    if not root.is_dir():
        raise LayoutError(f"{root}: no such folder or CSV file")
    if labels is None:
        if _class_folders(root):
            return _checked(_from_listing(root, "folders"), synsets)
        labels = _find_label_file(root)
    return with_label_file(root, Path(labels).expanduser(), synsets)


def is_imagenet_v2(images: LabelledImages) -> bool:
    """Whether a folders layout's class folders are all named as ImageNet-V2's are (``0`` to ``999``)."""
    return images.layout == "folders" and bool(images.classes) and all(map(_V2_FOLDER.fullmatch, images.classes))


def as_imagenet_v2(images: LabelledImages, sorted_synsets: list[str]) -> LabelledImages:
    """ImageNet-V2's folders relabelled: folder ``i`` is ``sorted_synsets[i]`` (the 1000 synsets in sorted
    order, as its release numbers them). LayoutError when a folder is not named ``0`` to ``999``."""
    if images.layout != "folders":
        raise LayoutError(f"{images.data}: the {IMAGENET_V2} layout is a folder of class folders 0 to 999")
    odd = [name for name in images.classes or () if not _V2_FOLDER.fullmatch(name)]
    if odd:
        raise LayoutError(
            f"{images.data}: folder {odd[0]!r} is not one of ImageNet-V2's class folders (0 to 999, folder i "
            "holding the i-th synset in sorted order)"
        )

    def synset(label: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted_synsets[int(name)] for name in label)

    return replace(
        images,
        labels=[synset(label) for label in images.labels],
        layout=IMAGENET_V2,
        classes=tuple(sorted_synsets[int(name)] for name in images.classes or ()),
    )


def _checked(images: LabelledImages, synsets: str | os.PathLike[str] | None) -> LabelledImages:
    if synsets is not None:
        raise OptionError(
            f"synsets: --synsets maps the devkit's class IDs to synsets; the {images.layout} layout of "
            f"{images.data} names its classes itself"
        )
    return images


def _from_listing(source: Path, layout: str) -> LabelledImages:
    """The folders or CSV layout, read as ``irv2 finetune`` reads its data; folders that cannot be listed are
    rows with an error (os.walk would leave them out without a word)."""
    unlisted: list[tuple[str, str, str]] = []
    try:
        items = list_images(source, unlisted=unlisted)
    except LayoutError:
        raise
    except DatasetError as exc:  # finetune's reader names the folder or CSV and the problem
        raise LayoutError(str(exc)) from None
    rows = [(path, (label,)) for path, label in items]
    rows += [(folder, (label,)) for folder, label, _ in unlisted]
    errors = {folder: f"cannot list folder ({reason})" for folder, _, reason in unlisted}  # as classify says
    classes = tuple(sorted({label for _, (label,) in rows})) if layout == "folders" else None
    return LabelledImages(
        [path for path, _ in rows], [label for _, label in rows], layout, os.fspath(source), errors=errors,
        classes=classes,
    )  # fmt: skip


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
    images = sum(1 for item in flat_images(root) if item.error is None)
    what = f"a folder of {images} images without class subfolders" if images else "a folder without images"
    raise LayoutError(
        f"{root}: {what}, and no label file for it: irv2 reads one subfolder per class (ImageNet's "
        f"val/n01440764/*.JPEG, or a fine-tuned module's classes), a CSV of path,label rows, or a flat folder "
        f"with Kaggle's {KAGGLE_SOLUTION} or the devkit's {GROUND_TRUTH} (found in the folder, up to "
        f"{SEARCH_DEPTH} folders above it, or in their {DEVKIT_DATA}/; else pass --labels FILE), or with ReaL's "
        "real.json (--real-labels FILE)"
    )


def _refuse_label_file_as_data(path: Path) -> None:
    if path.name in LABEL_FILES:
        raise LayoutError(f"{path} is a label file: pass the folder of images as --data and this file as --labels FILE")
