"""The numbers of an evaluation, from each image's top-k predictions and its label.

Counted as TF-Slim's ``eval_image_classifier`` counts them: top-1 is the arg-max over every output (for a
1001-class head "background" included, so predicting it is an error) and top-5 whether the label is among the
five largest outputs. Unreadable images are counted apart (``errors``) and left out of every denominator.

Calibration follows Guo et al. (2017), "On calibration of modern neural networks": the top-1 softmax
probability is the confidence; images are put in :data:`ECE_BINS` equal-width bins by confidence (``(lo, hi]``,
the first bin taking 0 too), and the expected calibration error is the images-weighted mean of
``|accuracy - confidence|`` over the bins. Agreement between two configurations is the share of images whose
top-1 class is the same, and the KL divergence ``KL(reference || other)`` of their softmax distributions,
averaged over the images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .classes import ClassSpace

TOP_K = 5
ECE_BINS = 15


def hits(top_index: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image, whether a label is the top-1 and whether one is among the top-k (``top_index`` ``[N, k]``,
    ``targets`` ``[N, m]``: each image's labels, padded with -1; ReaL gives several, every other layout one)."""
    match = (top_index[:, :, None] == targets[:, None, :]) & (targets >= 0)[:, None, :]
    return match[:, 0, :].any(axis=1), match.any(axis=(1, 2))


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> tuple[float | None, list]:
    """The expected calibration error and the reliability diagram's bins (``lower``, ``upper``, ``images``,
    ``accuracy``, ``confidence``; the last two None for an empty bin)."""
    if len(confidence) == 0:
        return None, []
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        accuracy = float(correct[inside].mean()) if count else None
        mean_confidence = float(confidence[inside].mean()) if count else None
        if count:
            ece += count / len(confidence) * abs(accuracy - mean_confidence)
        table.append(
            {
                "lower": b / bins,
                "upper": (b + 1) / bins,
                "images": count,
                "accuracy": accuracy,
                "confidence": mean_confidence,
            }
        )
    return ece, table


def accuracy_of(top_index: np.ndarray, top_prob: np.ndarray, targets: np.ndarray, good: np.ndarray) -> dict[str, Any]:
    """``top1``, ``top5``, ``images``, ``ece`` and ``reliability`` over the images in ``good``."""
    top1, topk = hits(top_index[good], targets[good])
    ece, bins = reliability(top_prob[good, 0].astype(np.float64), top1)
    count = int(good.sum())
    return {
        "top1": float(top1.mean()) if count else None,
        "top5": float(topk.mean()) if count else None,
        "images": count,
        "ece": ece,
        "reliability": bins,
    }


def agreement(reference_top1: np.ndarray, top1: np.ndarray, kl: np.ndarray) -> dict[str, float | None]:
    """``top1``: the share of images whose top-1 class is the reference's; ``mean_kl``: the mean
    ``KL(reference || this)`` in nats."""
    if len(top1) == 0:
        return {"top1": None, "mean_kl": None}
    return {"top1": float((reference_top1 == top1).mean()), "mean_kl": float(kl.mean())}


def per_class(targets: np.ndarray, top_index: np.ndarray, space: ClassSpace) -> dict[str, dict[str, Any]]:
    """For every class that labels an image (in the head's order): its ``name``, ``images``, ``top1``, ``top5``.
    An image with several labels (ReaL) counts in each of their classes."""
    top1, topk = hits(top_index, targets)
    table = {}
    for index in np.unique(targets[targets >= 0]):
        mine = (targets == index).any(axis=1)
        table[space.keys[index]] = {
            "name": space.names[index],
            "images": int(mine.sum()),
            "top1": float(top1[mine].mean()),
            "top5": float(topk[mine].mean()),
        }
    return table


def worst_classes(
    classes: dict[str, dict[str, Any]],
    targets: np.ndarray,
    top_index: np.ndarray,
    paths: Sequence[str],
    space: ClassSpace,
    *,
    count: int = 10,
    examples: int = 3,
) -> list[dict[str, Any]]:
    """The ``count`` classes with the lowest top-1 (then top-5; more images first on a tie), each with up to
    ``examples`` of its misclassified images: ``path``, ``predicted`` (the key of the top-1 class) and
    ``predicted_name``."""
    position = {key: i for i, key in enumerate(space.keys)}
    order = sorted(classes, key=lambda key: (classes[key]["top1"], classes[key]["top5"], -classes[key]["images"],
                                             position[key]))  # fmt: skip
    top1, _ = hits(top_index, targets)
    worst = []
    for key in order[:count]:
        index = position[key]
        wrong = np.flatnonzero((targets == index).any(axis=1) & ~top1)[:examples]
        shown = [
            {
                "path": paths[i],
                "predicted": space.keys[top_index[i, 0]],
                "predicted_name": space.names[top_index[i, 0]],
            }
            for i in wrong
        ]
        worst.append({"class": key, **classes[key], "examples": shown})
    return worst


def confusion(
    targets: np.ndarray, top1: np.ndarray, space: ClassSpace, *, limit: int = 50
) -> tuple[list[str], np.ndarray] | None:
    """The confusion matrix over the classes that label images, when there are at most ``limit`` of them and
    each image has one label: their keys and counts ``[true, predicted]``, ``[n, n + 1]``, the last column
    counting predictions of any other class. None for more classes, or for several labels an image (ReaL)."""
    if targets.shape[1] != 1:
        return None
    targets = targets[:, 0]
    present = np.unique(targets)
    if len(present) == 0 or len(present) > limit:
        return None
    column = {int(index): i for i, index in enumerate(present)}
    matrix = np.zeros((len(present), len(present) + 1), dtype=np.int64)
    for truth, predicted in zip(targets, top1, strict=True):
        matrix[column[int(truth)], column.get(int(predicted), len(present))] += 1
    return [space.keys[i] for i in present], matrix


def kl_divergence(reference_log_p: np.ndarray, log_p: np.ndarray) -> np.ndarray:
    """``KL(reference || other)`` per row, in nats, from log-probabilities ``[N, C]``: the expectation under the
    reference of ``log p_ref - log p_other`` (it is not symmetric)."""
    return (np.exp(reference_log_p) * (reference_log_p - log_p)).sum(axis=1)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax of ``[B, C]`` logits in float64 (so that KL divergences of close distributions keep their
    digits)."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
