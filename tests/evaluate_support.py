"""Building evaluation data sets the way ImageNet is distributed, from drawn images with known labels (for
tests/evaluate and the recipes of docs/evaluate.md).

Each layout gets the same images under the names that layout uses: ``val/<synset>/ILSVRC2012_val_N.JPEG``
(ImageNet's folders), a flat ``ILSVRC2012_img_val/`` with Kaggle's ``LOC_val_solution.csv`` or with the devkit's
``ILSVRC2012_validation_ground_truth.txt`` and a ``meta.mat`` whose class IDs are in the devkit's order, which is not
the sorted synset order; ImageNet-V2's numbered folders; ReaL's ``real.json``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

import irv2

SYNSETS = irv2.synsets(1000)  # sorted order, as the TF-Slim and Keras heads use it

# The drawn set of tests/evaluate: COUNT images, the one at BROKEN truncated; the others labelled with the class
# the weights rank RANKS[i] (0: their first choice), so that top-1 is TOP1 and top-5 TOP5 exactly.
COUNT, BROKEN = 15, 14
RANKS = [0, 0, 0, 0, 0, 1, 2, 3, 4, 700, 700, 700, 700, 700]
TOP1, TOP5 = 5 / 14, 9 / 14
FINETUNED_CLASSES = ["cat", "coffee", "rocket"]
# Logits differ in their last bits with the batch an image is in (oneDNN blocks batches by size); the labels'
# ranks must be clear of that noise, which is about 1e-6 here.
MARGIN = 1e-4


def draw_images(photo_arrays: dict[str, np.ndarray], count: int, *, broken: Sequence[int] = ()) -> list[bytes]:
    """``count`` JPEG files' bytes: crops of the photos, flipped and shifted so that no two are alike; positions in
    ``broken`` hold a truncated JPEG instead."""
    photos = list(photo_arrays.values())
    files = []
    for i in range(count):
        photo = photos[i % len(photos)]
        top, left = (i * 11) % (photo.shape[0] // 3), (i * 17) % (photo.shape[1] // 3)
        crop = photo[top : top + 2 * photo.shape[0] // 3, left : left + 2 * photo.shape[1] // 3]
        if (i // len(photos)) % 2:
            crop = crop[:, ::-1]
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(crop)).resize((200, 150)).save(buffer, "JPEG", quality=90)
        data = buffer.getvalue()
        files.append(data[: len(data) // 3] if i in broken else data)
    return files


def image_name(number: int) -> str:
    """ImageNet's validation file name of image ``number`` (1-based)."""
    return f"ILSVRC2012_val_{number:08d}.JPEG"


def write_folders(root: Path, files: Sequence[bytes], labels: Sequence[str]) -> Path:
    """``root/<label>/ILSVRC2012_val_N.JPEG``: ImageNet's folder layout (or a fine-tuned module's class folders)."""
    for number, (data, label) in enumerate(zip(files, labels, strict=True), start=1):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / image_name(number)).write_bytes(data)
    return root


def write_flat(root: Path, files: Sequence[bytes]) -> Path:
    """``root/ILSVRC2012_val_N.JPEG``: the validation images in one folder."""
    root.mkdir(parents=True, exist_ok=True)
    for number, data in enumerate(files, start=1):
        (root / image_name(number)).write_bytes(data)
    return root


def write_kaggle(path: Path, labels: dict[int, str]) -> Path:
    """Kaggle's ``LOC_val_solution.csv``: each image's synset first, then its boxes (and more boxes' synsets)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "PredictionString"])
        for number, synset in sorted(labels.items(), key=lambda item: -item[0]):  # not in image order either
            writer.writerow([image_name(number)[: -len(".JPEG")], f"{synset} 12 20 180 140 {synset} 1 2 30 40 "])
    return path


def devkit_order() -> list[str]:
    """The 1000 synsets in the devkit's class-ID order, as irv2 ships it (class ID ``i`` is ``order[i - 1]``;
    tests/evaluate/test_evaluate_datasets.py checks the copy)."""
    from irv2.evaluate.datasets import devkit_order as shipped

    order = shipped()
    assert order != SYNSETS
    return order


def shuffled_order(seed: int = 2012) -> list[str]:
    """The 1000 synsets in an order that is neither the devkit's nor the sorted one: a seeded shuffle."""
    order = list(np.random.default_rng(seed).permutation(SYNSETS))
    assert order not in (SYNSETS, devkit_order())
    return order


def write_imagenet_v2(root: Path, files: Sequence[bytes], labels: Sequence[str]) -> Path:
    """``root/<i>/<name>.jpeg``: ImageNet-V2's layout, folder ``i`` holding the ``i``-th synset in sorted order."""
    for number, (data, label) in enumerate(zip(files, labels, strict=True), start=1):
        folder = root / str(SYNSETS.index(label))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{number:04x}{number * 7919:016x}.jpeg").write_bytes(data)  # hashes, as the release names them
    return root


def write_real(path: Path, label_sets: Sequence[Sequence[str]]) -> Path:
    """ReaL's ``real.json``: per image, in image-number order, the indices of its right classes in sorted order."""
    import json

    path.write_text(json.dumps([sorted(SYNSETS.index(label) for label in labels) for labels in label_sets]))
    return path


def write_devkit(folder: Path, labels: dict[int, str], order: Sequence[str], *, meta: bool = True) -> Path:
    """The devkit's ``data/``: ``ILSVRC2012_validation_ground_truth.txt`` (line ``n``: image ``n``'s class ID in
    ``order``) and, with ``meta``, ``meta.mat`` (scipy writes it) holding ``order``, followed by a few inner nodes
    of the hierarchy, as the real one has. Returns the ground truth's path."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = {synset: i for i, synset in enumerate(order, start=1)}
    last = max(labels)
    lines = [str(ids[labels[n]]) if n in labels else str(1 + n % 1000) for n in range(1, last + 1)]
    truth = folder / "ILSVRC2012_validation_ground_truth.txt"
    truth.write_text("\n".join(lines) + "\n")
    if meta:
        write_meta_mat(folder / "meta.mat", order)
    return truth


def write_meta_mat(path: Path, order: Sequence[str], inner_nodes: int = 5) -> None:
    from scipy.io import savemat

    fields = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")]
    table = np.zeros((len(order) + inner_nodes, 1), dtype=fields)
    names = dict(zip(irv2.synsets(1001), irv2.labels(1001), strict=True))
    for i, synset in enumerate(order):
        table[i, 0] = (i + 1, synset, names[synset], 0)
    for j in range(inner_nodes):
        table[len(order) + j, 0] = (len(order) + j + 1, f"n9999999{j}", "an inner node", 3)
    savemat(path, {"synsets": table})


def write_synsets_file(path: Path, order: Sequence[str]) -> Path:
    path.write_text("\n".join(order) + "\n")
    return path


def subset_scores(logits: np.ndarray, labels: list[str], classes: list[str], keys: list[str]) -> tuple[float, float]:
    """The top-1 and top-5 of ``labels`` when only the outputs of ``classes`` are ranked (ImageNet-A's and -R's
    protocol), from ``logits`` ``[N, len(keys)]``; each label's place must be clear of the batch noise."""
    outputs = sorted(keys.index(c) for c in classes)
    subset = logits[:, outputs]
    ordered = -np.sort(-subset, axis=1)
    top1 = top5 = 0
    for i, label in enumerate(labels):
        mine = subset[i, outputs.index(keys.index(label))]
        rank = int((subset[i] > mine).sum())
        edges = [ordered[i, 1] if rank == 0 else ordered[i, 0]]  # what decides top-1
        if len(outputs) > 5:
            edges.append(ordered[i, 5] if rank < 5 else ordered[i, 4])  # what decides top-5
        assert all(abs(mine - edge) > MARGIN for edge in edges), f"image {i}: rank {rank} is too close to call"
        top1, top5 = top1 + (rank == 0), top5 + (rank < 5)
    return top1 / len(labels), top5 / len(labels)


def ranked_labels(logits: np.ndarray, keys: list[str], ranks: list[int]) -> list[str]:
    """Per image, the class of ``keys`` that ``logits`` rank ``ranks[i]``-th, where that place is clear of the
    batch noise for the scores to be exact (first by a margin, or clearly within or beyond the top 5)."""
    order = np.argsort(-logits, axis=1, kind="stable")
    ordered = -np.sort(-logits, axis=1)
    labels = []
    for i, rank in enumerate(ranks):
        # What decides the scores: the label's class is first by a clear margin (rank 0), or clearly below the
        # first and clearly above the sixth (ranks 1-4).
        first, mine, sixth = ordered[i, 0], ordered[i, rank], ordered[i, 5]
        clear = first - ordered[i, 1] > MARGIN if rank == 0 else first - mine > MARGIN and mine - sixth > MARGIN
        assert rank >= 5 or clear, f"image {i}: its logits {ordered[i, :6]} are too close to rank its label"
        labels.append(keys[order[i, rank]])
    return labels
