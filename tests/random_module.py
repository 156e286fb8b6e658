"""A small-to-build stand-in for real weights: a random network whose BatchNorm statistics fit real photos.

Shared by the command-line, engine and server tests, which need weights that tell photos apart without
downloading anything.
"""

from __future__ import annotations

import numpy as np

from irv2.api.module import Module
from irv2.bench.synthetic import calibrated_random_module
from irv2.preprocessing import preprocess_for_eval


def random_module(photo_arrays: dict[str, np.ndarray]) -> Module:
    """A randomly initialised network whose BatchNorm statistics are measured on the photos.

    With PyTorch's default statistics (mean 0, variance 1) the activations fade through the 40 residual
    blocks and every photo gets the same logits to 1e-4. Measuring the statistics on real photos keeps the
    weights random but makes different photos give clearly different predictions, so a test that mixes up
    images or orientations can fail.
    """
    batch = np.stack([preprocess_for_eval(image) for image in photo_arrays.values()])
    return calibrated_random_module(batch)
