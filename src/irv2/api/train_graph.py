"""TF-Hub's ``{"train"}`` graph: the state ``irv2.load(..., tags={"train"})`` and fine-tuning put a network in."""

from __future__ import annotations

import torch

from ..model import InceptionResNetV2

# TF-Hub's image modules take BatchNorm's moving-average decay as ``batch_norm_momentum`` (0.997 in later
# versions; TF-Slim trained with 0.9997) and TF-Slim's classifier dropout as keep_prob 0.8.
DEFAULT_BATCH_NORM_MOMENTUM = 0.997
DEFAULT_DROPOUT_RATE = 0.2


def set_train_mode(
    model: InceptionResNetV2,
    *,
    batch_norm_momentum: float = DEFAULT_BATCH_NORM_MOMENTUM,
    dropout_rate: float = DEFAULT_DROPOUT_RATE,
) -> None:
    """Put ``model`` in TF-Hub's training graph: BatchNorm on batch statistics, updating its moving averages
    with decay ``batch_norm_momentum`` as TensorFlow states it (``moving = decay * moving + (1 - decay) *
    batch``; PyTorch's momentum is the other weight, ``1 - decay``), dropout ``dropout_rate`` before the
    classifier, and every weight trainable but BatchNorm's scale, which TF-Slim's BatchNorm does not have."""
    if not 0.0 < batch_norm_momentum < 1.0:
        raise ValueError(f"batch_norm_momentum is a decay in (0, 1), got {batch_norm_momentum}")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}")
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = 1.0 - batch_norm_momentum
        elif isinstance(layer, torch.nn.Dropout):
            layer.p = dropout_rate
    for name, parameter in model.named_parameters():
        # TF-Slim's BatchNorm has no scale: the PyTorch stand-in stays fixed at one.
        parameter.requires_grad_(not name.endswith("bn.weight"))
    model.train()
