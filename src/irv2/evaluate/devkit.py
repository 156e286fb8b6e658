"""The ILSVRC2012 devkit's validation labels: ``ILSVRC2012_validation_ground_truth.txt`` and the map from its
class IDs to WordNet synsets (the devkit's ``data/meta.mat``, or a text file with one synset per line).

The ground truth gives each validation image's class as an ``ILSVRC2012_ID`` (1-1000), and those IDs follow the
order of the ``synsets`` table in ``meta.mat``, which is not the sorted synset order the TF-Slim, Keras and timm
heads use: ID 1 is n02119789 (kit fox), while the first synset in sorted order is n01440764 (tench). Reading
the IDs as sorted positions would mislabel almost every image, so irv2 reads the map and never guesses it.
scipy reads ``meta.mat`` (MATLAB 5 format): ``pip install 'irv2[devkit]'``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import LayoutError
from ..extras import require_extra

GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
META_MAT = "meta.mat"


def read_ground_truth(path: str | os.PathLike[str]) -> list[int]:
    """The class ID of each validation image, in image-number order (line ``n`` is image ``n``)."""
    ids = []
    for number, line in enumerate(_lines(path), start=1):
        text = line.strip()
        if not text:
            continue
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
    return {int(np.asarray(i).item()): str(np.asarray(w).item()) for i, w in zip(ids, wnids, strict=True)}


def read_synsets_file(path: str | os.PathLike[str]) -> dict[int, str]:
    """``ILSVRC2012_ID`` → WordNet ID from a text file with one synset per line, line ``n`` for ID ``n``."""
    lines = _lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    table = {}
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or len(text.split()) != 1:
            raise LayoutError(f"{path}, line {number}: expected one synset (WordNet ID) per line, got {line!r}")
        table[number] = text
    if not table:
        raise LayoutError(f"{path}: no synsets in this file (expected one WordNet ID per line, in class-ID order)")
    return table


def synset_map_for(ground_truth: str | os.PathLike[str], synsets: str | os.PathLike[str] | None) -> tuple[dict, str]:
    """The ID → synset map for ``ground_truth`` and the file it came from: ``synsets`` when given, else the
    ``meta.mat`` beside the ground truth (where the devkit keeps both, in ``data/``)."""
    if synsets is not None:
        return read_synsets_file(synsets), os.fspath(synsets)
    meta = Path(ground_truth).with_name(META_MAT)
    if not meta.is_file():
        raise LayoutError(
            f"{ground_truth}: its class IDs follow the devkit's own order (data/{META_MAT}), not the sorted synset "
            f"order, and there is no {META_MAT} beside it ({meta}). Put the devkit's {META_MAT} there (scipy reads "
            "it: pip install 'irv2[devkit]'), or pass --synsets FILE with one synset per line in ID order; irv2 "
            "never assumes the sorted order"
        )
    return read_meta_mat(meta), os.fspath(meta)


def _lines(path: str | os.PathLike[str]) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LayoutError(f"{path}: cannot read this file ({getattr(exc, 'strerror', None) or exc})") from None
