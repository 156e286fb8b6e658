"""Keras' ``InceptionResNetV2`` layer names → TF-Slim variable names.

Keras builds the same network as TF-Slim (its docstring says it follows the TF-Slim implementation) and
its published weights were converted from the TF-Slim checkpoint with the background class dropped
(1000 classes). Most of its BN convs carry automatic names (``conv2d_N``/``batch_normalization_N``),
numbered in creation order, which is TF-Slim's creation order; the rest are named explicitly. Mapping to
TF-Slim names lets the strict TF-Slim conversion do the rest.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import WeightMismatchError
from .slim_names import SCOPE, base_layers

_AUTO_CONV = re.compile(r"conv2d(?:_(\d+))?")
_AUTO_BN = re.compile(r"batch_normalization(?:_(\d+))?")
_RESIDUAL = {"block35": ("Repeat/block35", 10), "block17": ("Repeat_1/block17", 20), "block8": ("Repeat_2/block8", 9)}


def _numbered(layers: dict[str, list[np.ndarray]], pattern: re.Pattern[str]) -> list[str]:
    """Auto-named layers sorted by their counter (Keras 2.0 counted from _1, later versions from none)."""
    found = [(int(m.group(1) or 0), name) for name in layers if (m := pattern.fullmatch(name))]
    return [name for _, name in sorted(found)]


def keras_to_slim(layers: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """TF-Slim-named tensors from Keras layer weights (kernels are HWIO / [in, out] in both)."""
    bn_scopes = [layer.tf_scope for layer in base_layers() if layer.kind == "cbr"]
    auto_scopes = bn_scopes[:-1]  # the last one, Conv2d_7b_1x1, is Keras' named conv_7b
    convs, bns = _numbered(layers, _AUTO_CONV), _numbered(layers, _AUTO_BN)
    if len(convs) != len(auto_scopes) or len(bns) != len(auto_scopes):
        raise WeightMismatchError(
            f"not Keras' InceptionResNetV2: {len(convs)} auto-named convs and {len(bns)} batch norms, "
            f"expected {len(auto_scopes)} of each"
        )
    tensors: dict[str, np.ndarray] = {}

    def conv_bn(scope: str, conv: str, bn: str) -> None:
        (tensors[f"{SCOPE}/{scope}/weights"],) = _weights(layers, conv, 1)
        beta, mean, var = _weights(layers, bn, 3)
        tensors.update({f"{SCOPE}/{scope}/BatchNorm/{k}": v for k, v in (("beta", beta), ("moving_mean", mean),
                                                                         ("moving_variance", var))})  # fmt: skip

    for scope, conv, bn in zip(auto_scopes, convs, bns, strict=True):
        conv_bn(scope, conv, bn)
    conv_bn("Conv2d_7b_1x1", "conv_7b", "conv_7b_bn")
    for keras_block, (slim_block, count) in _RESIDUAL.items():
        for i in range(1, count + 1):
            _up(tensors, layers, f"{keras_block}_{i}_conv", f"{slim_block}_{i}/Conv2d_1x1")
    _up(tensors, layers, "block8_10_conv", "Block8/Conv2d_1x1")
    if "predictions" in layers:
        kernel, bias = _weights(layers, "predictions", 2)
        tensors[f"{SCOPE}/Logits/Logits/weights"], tensors[f"{SCOPE}/Logits/Logits/biases"] = kernel, bias
    return tensors


def _up(tensors: dict[str, np.ndarray], layers: dict[str, list[np.ndarray]], keras_name: str, scope: str) -> None:
    kernel, bias = _weights(layers, keras_name, 2)
    tensors[f"{SCOPE}/{scope}/weights"], tensors[f"{SCOPE}/{scope}/biases"] = kernel, bias


def _weights(layers: dict[str, list[np.ndarray]], name: str, count: int) -> list[np.ndarray]:
    if name not in layers:
        raise WeightMismatchError(f"missing Keras layer {name}")
    if len(layers[name]) != count:
        raise WeightMismatchError(f"Keras layer {name} has {len(layers[name])} weights, expected {count}")
    return layers[name]
