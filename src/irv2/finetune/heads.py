"""New classifier heads for the fine-tuned classes, and when TF-Slim's auxiliary head can be used."""

from __future__ import annotations

from torch import nn

from ..model import InceptionResNetV2
from ..model.blocks import AuxLogits
from ..model.network import NUM_FEATURES
from .dropout import SampleDropout


def _valid(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def aux_head_fits(image_size: int) -> bool:
    """Whether the AuxLogits head can run on ``image_size`` x ``image_size`` images.

    The head ends in a 5x5 VALID convolution over a 5x5/3 average pool of PreAuxLogits, then a dense
    layer over exactly 768 values, so PreAuxLogits must be 17 to 19 pixels wide: true for 299 px (and up
    to about 330), false for every smaller size. The arithmetic follows the VALID layers of the stem.
    """
    size = _valid(image_size, 3, 2)  # Conv2d_1a_3x3
    size = _valid(size, 3, 1)  # Conv2d_2a_3x3 (Conv2d_2b is SAME)
    size = _valid(size, 3, 2)  # MaxPool_3a_3x3
    size = _valid(size, 3, 1)  # Conv2d_4a_3x3 (Conv2d_3b is 1x1)
    size = _valid(size, 3, 2)  # MaxPool_5a_3x3
    size = _valid(size, 3, 2)  # Mixed_6a (Mixed_5b and the Block35s keep the size) → PreAuxLogits
    pooled = _valid(size, 5, 3)
    return pooled >= 5 and _valid(pooled, 5, 1) == 1


def replace_heads(model: InceptionResNetV2, num_classes: int, *, aux: bool) -> None:
    """Fresh ``num_classes``-way classifier; a fresh AuxLogits head if ``aux``, else none at all.

    A head trained for other classes would be meaningless for the new ones, so the old AuxLogits is
    never kept: either it is replaced and trained, or removed (and then not saved either).
    """
    model.reset_classifier(num_classes)
    model.aux_logits = AuxLogits(num_classes) if aux else None


def head_parameter(name: str) -> bool:
    """Whether a parameter name of the network belongs to a classifier head (new, full learning rate)."""
    return name.startswith(("classif.", "aux_logits."))


def linear_head(num_classes: int, dropout_rate: float, seed: int) -> nn.Sequential:
    """Linear mode's trainable part: dropout (seeded per image, see ``dropout.py``) then the classifier, on
    cached 1536-d features."""
    return nn.Sequential(SampleDropout(dropout_rate, seed), nn.Linear(NUM_FEATURES, num_classes))
