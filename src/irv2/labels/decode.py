"""Turn logits into ranked, labelled predictions."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .imagenet import labels_for


class Prediction(NamedTuple):
    index: int  # the class index in the head that produced the scores
    label: str
    score: float  # softmax probability


def top_k(logits: Any, k: int = 5, labels: Sequence[str] | None = None) -> list[list[Prediction]]:
    """Top-``k`` softmax predictions per image for logits ``[B, C]`` (or one image ``[C]``).

    Labels default to ImageNet's for the head's width: 1001 classes include "background" at index 0,
    1000 do not. Any other width needs explicit ``labels`` of that length.
    """
    torch = sys.modules.get("torch")  # a tensor's caller has imported torch; numpy callers need not
    if torch is not None and isinstance(logits, torch.Tensor):
        logits = logits.detach().float().cpu().numpy()
    scores = np.array(logits, dtype=np.float32)  # a copy: the input may be read-only
    if scores.ndim == 1:
        scores = scores[None]
    if scores.ndim != 2:
        raise ValueError(f"expected logits of shape [batch, classes], got {tuple(scores.shape)}")
    num_classes = scores.shape[1]
    names = list(labels) if labels is not None else labels_for(num_classes)
    if names is None:
        raise ValueError(f"a {num_classes}-class head is not an ImageNet head: pass labels=[...]")
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} labels given for a {num_classes}-class head")
    probs = softmax(scores)
    count = min(k, num_classes)
    # Highest first; a stable sort on the negated scores keeps the lower index first among ties, as torch.topk.
    order = np.argsort(-probs, axis=1, kind="stable")[:, :count]
    return [
        [Prediction(int(i), names[int(i)], float(row[i])) for i in ranked]
        for row, ranked in zip(probs, order, strict=True)
    ]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float32 as the logits are (shifted by the row's maximum, so it never
    overflows)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=-1, keepdims=True)
    return shifted
