"""TF-Hub's ``{"train"}`` graph: the state ``irv2.load(..., tags={"train"})`` and fine-tuning put a network in,
and the switch between it and the inference graph."""

from __future__ import annotations

import torch

from ..model import InceptionResNetV2

# TF-Hub's image modules take BatchNorm's moving-average decay as ``batch_norm_momentum`` (0.997 in later
# versions; TF-Slim trained with 0.9997) and TF-Slim's classifier dropout as keep_prob 0.8.
DEFAULT_BATCH_NORM_MOMENTUM = 0.997
DEFAULT_DROPOUT_RATE = 0.2

# Set on a network once set_train_mode has given it the train graph's decay and dropout, so that a later switch
# back to training (Module.train) keeps what the user chose instead of resetting it.
_CONFIGURED = "_irv2_train_graph_configured"


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
    setattr(model, _CONFIGURED, True)
    model.train()


def enter_train_graph(model: InceptionResNetV2) -> None:
    """``model`` in the train graph: as :func:`set_train_mode` left it if it ever did, else with its defaults."""
    if getattr(model, _CONFIGURED, False):
        model.train()
    else:
        set_train_mode(model)


def freeze_moving_averages(model: InceptionResNetV2, frozen: bool) -> None:
    """Whether BatchNorm's moving averages stay as they are in the train graph, which still normalises with
    batch statistics. TF1 changed them only when the caller ran UPDATE_OPS, which TF-Hub collects only for a
    ``trainable=True`` module: ``hub.Module(h, tags={"train"})`` alone never moves them. PyTorch's BatchNorm
    without ``track_running_stats`` normalises a training batch with its own statistics and leaves the running
    buffers alone; in evaluation it still reads them, since they exist."""
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.track_running_stats = not frozen
