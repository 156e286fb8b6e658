"""The ILSVRC2012 devkit's validation labels: ``ILSVRC2012_validation_ground_truth.txt`` and the map from its
class IDs to WordNet synsets (the devkit's ``data/meta.mat``, or a text file with one synset per line).

The ground truth gives each validation image's class as an ``ILSVRC2012_ID`` (1-1000), and those IDs follow the
order of the ``synsets`` table in ``meta.mat``, which is not the sorted synset order the TF-Slim, Keras and timm
heads use: ID 1 is n02119789 (kit fox), while the first synset in sorted order is n01440764 (tench). Reading
the IDs as sorted positions would mislabel almost every image, so irv2 never assumes that order: it ships the
devkit's own (:func:`irv2.evaluate.datasets.devkit_order`), and checks a ``meta.mat`` or ``--synsets`` file
against it. scipy reads ``meta.mat`` (MATLAB 5 format, ``pip install 'irv2[devkit]'``); without scipy the
shipped order is used.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np

from ..errors import LayoutError
from ..extras import require_extra
from ..labels import imagenet_synsets
from .datasets import devkit_order

GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
META_MAT = "meta.mat"
BUILT_IN = "irv2's copy of the devkit's class-ID order"
_WNID = re.compile(r"n\d{8}")
_SYNSETS_FILE_IS = (
    "--synsets takes the devkit's map from class ID to synset: 1000 lines, line i the WordNet ID of "
    "ILSVRC2012_ID i, in the order of the devkit's data/meta.mat (irv2 ships that order: leave --synsets out)"
)
_META_MAT_IS = (
    "this is not the ILSVRC2012 devkit's meta.mat; move it away from the ground truth, and irv2 maps the class IDs "
    "with its copy of the devkit's order"
)


def read_ground_truth(path: str | os.PathLike[str]) -> list[int]:
    """The class ID of each validation image, in image-number order (line ``n`` is image ``n``). Blank lines
    are allowed at the end only: one in the middle would shift every later image's label by one."""
    lines = _lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    ids = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            raise LayoutError(
                f"{path}, line {number}: a blank line before the last class ID; line n labels image n, so "
                "skipping it would shift every later label by one. Remove the blank line if nothing is missing "
                "there, or restore the file from the devkit"
            )
        try:
            ids.append(int(text))
        except ValueError:
            raise LayoutError(
                f"{path}, line {number}: expected a class ID (a whole number, one per line, as the devkit's "
                f"{GROUND_TRUTH} has), got {text[:40]!r}"
            ) from None
    if not ids:
        raise LayoutError(f"{path}: no class IDs in this ground-truth file")
    return ids


def read_meta_mat(path: str | os.PathLike[str]) -> dict[int, str]:
    """``ILSVRC2012_ID`` → WordNet ID from the devkit's ``meta.mat`` (its ``synsets`` table: the 1000 classes,
    then the inner nodes of the hierarchy, which no image is labelled with)."""
    require_extra("devkit", f"reading the devkit's {path}")
    from scipy.io import loadmat

    try:
        meta = loadmat(os.fspath(path), squeeze_me=True)
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise LayoutError(f"{path}: cannot read this as the devkit's meta.mat ({exc})") from None
    table = meta.get("synsets")
    fields = getattr(getattr(table, "dtype", None), "names", None) or ()
    if "ILSVRC2012_ID" not in fields or "WNID" not in fields:
        raise LayoutError(
            f"{path}: no 'synsets' table with ILSVRC2012_ID and WNID fields (the devkit's data/meta.mat has one)"
        )
    ids = np.atleast_1d(table["ILSVRC2012_ID"])
    wnids = np.atleast_1d(table["WNID"])
    mapping = {int(np.asarray(i).item()): str(np.asarray(w).item()) for i, w in zip(ids, wnids, strict=True)}
    check_synset_order(mapping, path)
    return mapping


def read_synsets_file(path: str | os.PathLike[str]) -> dict[int, str]:
    """``ILSVRC2012_ID`` → WordNet ID from a text file with one synset per line, line ``n`` for ID ``n``: the
    1000 ImageNet synsets, each once, in the devkit's order (:func:`check_synset_order`)."""
    lines = _lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    table = {}
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not _WNID.fullmatch(text):
            raise LayoutError(
                f"{path}, line {number}: expected one WordNet ID (n and 8 digits) per line, got {line[:40]!r}; "
                f"{_SYNSETS_FILE_IS}"
            )
        table[number] = text
    check_synset_order(table, path)
    return table


def check_synset_order(table: dict[int, str], path: str | os.PathLike[str]) -> None:
    """LayoutError unless IDs 1-1000 of ``table`` are the 1000 ImageNet synsets, each once, and not in sorted
    order: any other list (the sorted one TF-Slim and timm ship, a 50,000-line per-image file, a 1001-line list
    with "background") would label the images without a word of warning."""
    mat = Path(path).suffix.lower() == ".mat"
    fix = _META_MAT_IS if mat else _SYNSETS_FILE_IS
    known = imagenet_synsets(1000)
    order = [table.get(i) for i in range(1, len(known) + 1)]
    count = sum(1 for i in table if 1 <= i <= len(known))
    extra = len(table) - count if not mat else 0  # meta.mat lists the inner nodes of the hierarchy too
    if count != len(known) or extra:
        raise LayoutError(f"{path}: holds {len(table)} synsets, not 1000; {fix}")
    unknown = [s for s in order if s not in set(known)]
    if unknown:
        raise LayoutError(f"{path}: {unknown[0]} is not one of ImageNet's 1000 synsets; {fix}")
    seen: dict[str, int] = {}
    for number, synset in enumerate(order, start=1):
        if synset in seen:
            raise LayoutError(
                f"{path}: {synset} is on lines {seen[synset]} and {number}; each synset is one class ID; {fix}"
            )
        seen[synset] = number
    if order == known:
        raise LayoutError(
            f"{path}: these synsets are in sorted order (n01440764 first), the order of the TF-Slim, Keras and "
            f"timm heads, not the devkit's class-ID order (ID 1 is n02119789, kit fox). {fix}"
        )
    devkit = devkit_order()
    differ = next((i for i, (mine, theirs) in enumerate(zip(order, devkit, strict=True)) if mine != theirs), None)
    if differ is not None:
        raise LayoutError(
            f"{path}: ID {differ + 1} is {order[differ]} here, but {devkit[differ]} in the devkit's data/meta.mat. "
            f"{fix}"
        )


def synset_map_for(ground_truth: str | os.PathLike[str], synsets: str | os.PathLike[str] | None) -> tuple[dict, str]:
    """The ID → synset map for ``ground_truth`` and where it came from: ``synsets`` when given, else the
    ``meta.mat`` beside the ground truth (where the devkit keeps both, in ``data/``) when scipy can read it, else
    the devkit's order that irv2 ships (:data:`BUILT_IN`). A file given or found must agree with that order."""
    if synsets is not None:
        return read_synsets_file(synsets), os.fspath(synsets)
    meta = Path(ground_truth).with_name(META_MAT)
    if meta.is_file() and importlib.util.find_spec("scipy") is not None:
        return read_meta_mat(meta), os.fspath(meta)
    return dict(enumerate(devkit_order(), start=1)), BUILT_IN


def _lines(path: str | os.PathLike[str]) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LayoutError(f"{path}: cannot read this file ({getattr(exc, 'strerror', None) or exc})") from None
