"""Turn logits into ranked, labelled predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from .imagenet import labels_for


class Prediction(NamedTuple):
    index: int  # the class index in the head that produced the scores
    label: str
    score: float  # softmax probability


def top_k(logits: np.ndarray | torch.Tensor, k: int = 5, labels: Sequence[str] | None = None) -> list[list[Prediction]]:
    """Top-``k`` softmax predictions per image for logits ``[B, C]`` (or one image ``[C]``).

    Labels default to ImageNet's for the head's width: 1001 classes include "background" at index 0,
    1000 do not. Any other width needs explicit ``labels`` of that length.
    """
    if isinstance(logits, torch.Tensor):
        scores = logits.detach().float().cpu()
    else:
        scores = torch.from_numpy(np.array(logits, dtype=np.float32))  # a copy: the input may be read-only
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
    probs = torch.softmax(scores, dim=1)
    values, indices = probs.topk(min(k, num_classes), dim=1)
    return [
        [Prediction(int(i), names[int(i)], float(p)) for p, i in zip(row_p, row_i, strict=True)]
        for row_p, row_i in zip(values, indices, strict=True)
    ]
