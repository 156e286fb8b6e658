"""A small-to-build stand-in for real weights: a random network whose BatchNorm statistics fit real photos.

Shared by the command-line and server tests, which both need weights that tell photos apart without
downloading anything.
"""

from __future__ import annotations

import numpy as np
import torch

import irv2
from irv2.api.module import Module, ModuleInfo
from irv2.model import InceptionResNetV2
from irv2.preprocessing import preprocess_for_eval


def random_module(photo_arrays: dict[str, np.ndarray]) -> Module:
    """A randomly initialised network whose BatchNorm statistics are measured on the photos.

    With PyTorch's default statistics (mean 0, variance 1) the activations fade through the 40 residual
    blocks and every photo gets the same logits to 1e-4. Measuring the statistics on real photos (one
    forward pass in training mode, cumulative averages) keeps the weights random but makes different
    photos give clearly different predictions, so a test that mixes up images or orientations can fail.
    """
    torch.manual_seed(0)
    model = InceptionResNetV2()
    batch = np.stack([preprocess_for_eval(image) for image in photo_arrays.values()])
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average over the batch
    model.train()
    with torch.no_grad():
        model.forward_features(torch.from_numpy(2.0 * batch - 1.0).permute(0, 3, 1, 2))
    return Module(model.eval(), ModuleInfo(1001, irv2.labels()))
