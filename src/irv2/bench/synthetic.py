"""Untrained weights that behave like trained ones, for measuring speed without downloading anything.

A network straight from PyTorch's initialisation has BatchNorm statistics (mean 0, variance 1) that do not
fit its activations: they fade through the 40 residual blocks into subnormal floats, which CPUs process
tens of times slower, so such a network would measure the CPU's subnormal path, not irv2. Measuring the
statistics on real photos (one forward pass in training mode, cumulative averages) keeps the activations in
the range trained weights give.
"""

from __future__ import annotations

import numpy as np
import torch

from ..api.module import Module, ModuleInfo
from ..data import sample_photos
from ..labels import labels_for
from ..model import InceptionResNetV2


def calibrated_random_module(images: np.ndarray | None = None, *, seed: int = 0) -> Module:
    """A randomly initialised 1001-class ``Module`` whose BatchNorm statistics are measured on ``images``
    (``[N, H, W, 3]`` in [0, 1]; default: the bundled photo and its mirror image)."""
    if images is None:
        images = sample_photos()
    torch.manual_seed(seed)
    model = InceptionResNetV2()
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average over the batch
    model.train()
    with torch.no_grad():
        model.forward_features(torch.from_numpy(2.0 * np.ascontiguousarray(images) - 1.0).permute(0, 3, 1, 2))
    return Module(model.eval(), ModuleInfo(1001, labels_for(1001)))
