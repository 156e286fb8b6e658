"""Seeded, full-size TF-Slim weights with realistic BatchNorm statistics, for the parity tests.

Random BN statistics (or zeros and ones) would let activations drift through 40 residual blocks and hide
errors. Instead the moving statistics are calibrated: the network runs on real photos with BatchNorm in
training mode (cumulative averages), so each layer's stored mean and variance are what it really sees;
a seeded jitter keeps them from being exactly the batch statistics.
"""

from __future__ import annotations

import numpy as np
import torch

from slim_template import layers


def random_slim_weights(seed: int = 0, num_classes: int = 1001) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for kind, scope, shape in layers(num_classes):
        fan_in = int(np.prod(shape[:-1]))
        cout = shape[-1]
        if kind == "bn":
            weights[f"{scope}/weights"] = rng.normal(0, np.sqrt(2 / fan_in), shape)
            weights[f"{scope}/BatchNorm/beta"] = rng.normal(0, 0.2, cout)
            weights[f"{scope}/BatchNorm/moving_mean"] = np.zeros(cout)
            weights[f"{scope}/BatchNorm/moving_variance"] = np.ones(cout)
        elif kind == "up":
            weights[f"{scope}/weights"] = rng.normal(0, np.sqrt(1 / fan_in), shape)
            weights[f"{scope}/biases"] = rng.normal(0, 0.1, cout)
        else:
            weights[f"{scope}/weights"] = rng.normal(0, np.sqrt(1 / fan_in), shape)
            weights[f"{scope}/biases"] = rng.normal(0, 0.1, cout)
    return {k: v.astype(np.float32) for k, v in weights.items()}


def calibrate_batchnorm(weights: dict[str, np.ndarray], images01: np.ndarray, seed: int = 0) -> None:
    """Replace the moving statistics in ``weights`` by those the network sees on ``images01`` [B,H,W,3]."""
    from irv2.model import InceptionResNetV2
    from irv2.weights.slim_convert import inspect_layout, slim_to_state_dict
    from irv2.weights.slim_names import tensor_map

    layout = inspect_layout(weights)
    model = InceptionResNetV2(num_classes=layout.num_classes, aux_logits=layout.aux_logits)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    model.load_state_dict(slim_to_state_dict(weights, expected, layout=layout).state_dict)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batches
    model.train()
    x = torch.from_numpy(2.0 * images01 - 1.0).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        model.forward_with_aux(x)
    state = model.state_dict()
    rng = np.random.default_rng(seed + 1)
    for tf_name, (key, _) in tensor_map(logits=layout.num_classes > 0, aux=layout.aux_logits).items():
        if tf_name.endswith("moving_mean"):
            var = state[key.replace("running_mean", "running_var")].numpy()
            jitter = 0.1 * np.sqrt(var) * rng.normal(size=var.shape)
            weights[tf_name] = (state[key].numpy() + jitter).astype(np.float32)
        elif tf_name.endswith("moving_variance"):
            weights[tf_name] = (state[key].numpy() * rng.uniform(0.8, 1.25, state[key].shape)).astype(np.float32)
