"""The table between TF-Slim variable scopes and irv2/timm module names.

One row per layer: ``(tf_scope, torch_prefix, kind)``, where kind says how a layer's TF tensors expand:

- ``cbr``: conv + BatchNorm: ``weights``, ``BatchNorm/{beta,moving_mean,moving_variance}``
- ``up``: the residual up-projection, a plain conv: ``weights``, ``biases``
- ``fc``: a fully connected layer: ``weights``, ``biases``

Everything is under the TF scope ``InceptionResnetV2/``. The table is data: it knows nothing of files.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

SCOPE = "InceptionResnetV2"

Kind = Literal["cbr", "up", "fc"]


class Layer(NamedTuple):
    tf_scope: str
    torch_prefix: str
    kind: Kind


def _branches(tf_block: str, torch_block: str, spec: dict[int, list[str]]) -> list[Layer]:
    """Expand ``{branch: [TF conv names]}`` into BN-conv rows (a lone conv is not a Sequential)."""
    rows = []
    for branch, convs in spec.items():
        for i, conv in enumerate(convs):
            index = f".{i}" if len(convs) > 1 else ""
            rows.append(Layer(f"{tf_block}/Branch_{branch}/{conv}", f"{torch_block}.branch{branch}{index}", "cbr"))
    return rows


_BLOCK35 = {0: ["Conv2d_1x1"], 1: ["Conv2d_0a_1x1", "Conv2d_0b_3x3"],
            2: ["Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_0c_3x3"]}  # fmt: skip
_BLOCK17 = {0: ["Conv2d_1x1"], 1: ["Conv2d_0a_1x1", "Conv2d_0b_1x7", "Conv2d_0c_7x1"]}
_BLOCK8 = {0: ["Conv2d_1x1"], 1: ["Conv2d_0a_1x1", "Conv2d_0b_1x3", "Conv2d_0c_3x1"]}


def _residual(tf_block: str, torch_block: str, spec: dict[int, list[str]]) -> list[Layer]:
    return [*_branches(tf_block, torch_block, spec), Layer(f"{tf_block}/Conv2d_1x1", f"{torch_block}.conv2d", "up")]


def _mixed_5b_branch3() -> Layer:
    # Branch_3 is AvgPool_0a_3x3 (no variables, Sequential index 0) then Conv2d_0b_1x1 (index 1).
    return Layer("Mixed_5b/Branch_3/Conv2d_0b_1x1", "mixed_5b.branch3.1", "cbr")


def base_layers() -> list[Layer]:
    """Rows of the base network, up to and including ``Conv2d_7b_1x1`` (the feature extractor)."""
    rows = [
        Layer("Conv2d_1a_3x3", "conv2d_1a", "cbr"),
        Layer("Conv2d_2a_3x3", "conv2d_2a", "cbr"),
        Layer("Conv2d_2b_3x3", "conv2d_2b", "cbr"),
        Layer("Conv2d_3b_1x1", "conv2d_3b", "cbr"),
        Layer("Conv2d_4a_3x3", "conv2d_4a", "cbr"),
    ]
    rows += _branches("Mixed_5b", "mixed_5b", {0: ["Conv2d_1x1"], 1: ["Conv2d_0a_1x1", "Conv2d_0b_5x5"],
                                              2: ["Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_0c_3x3"]})  # fmt: skip
    rows.append(_mixed_5b_branch3())
    for i in range(10):
        rows += _residual(f"Repeat/block35_{i + 1}", f"repeat.{i}", _BLOCK35)
    rows += _branches("Mixed_6a", "mixed_6a", {0: ["Conv2d_1a_3x3"],
                                              1: ["Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_1a_3x3"]})  # fmt: skip
    for i in range(20):
        rows += _residual(f"Repeat_1/block17_{i + 1}", f"repeat_1.{i}", _BLOCK17)
    rows += _branches("Mixed_7a", "mixed_7a", {0: ["Conv2d_0a_1x1", "Conv2d_1a_3x3"],
                                              1: ["Conv2d_0a_1x1", "Conv2d_1a_3x3"],
                                              2: ["Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_1a_3x3"]})  # fmt: skip
    for i in range(9):
        rows += _residual(f"Repeat_2/block8_{i + 1}", f"repeat_2.{i}", _BLOCK8)
    rows += _residual("Block8", "block8", _BLOCK8)
    rows.append(Layer("Conv2d_7b_1x1", "conv2d_7b", "cbr"))
    return rows


LOGITS = Layer("Logits/Logits", "classif", "fc")
AUX_LAYERS = [
    Layer("AuxLogits/Conv2d_1b_1x1", "aux_logits.conv2d_1b", "cbr"),
    Layer("AuxLogits/Conv2d_2a_5x5", "aux_logits.conv2d_2a", "cbr"),
    Layer("AuxLogits/Logits", "aux_logits.classif", "fc"),
]


def layers(*, logits: bool = True, aux: bool = True) -> list[Layer]:
    """All rows for a network with or without its classifier and auxiliary head."""
    return base_layers() + ([LOGITS] if logits else []) + (AUX_LAYERS if aux else [])


# How each kind's TF tensors map onto PyTorch tensors: (TF suffix, PyTorch suffix, layout transform).
TENSORS: dict[Kind, tuple[tuple[str, str, str], ...]] = {
    "cbr": (
        ("weights", "conv.weight", "hwio_to_oihw"),
        ("BatchNorm/beta", "bn.bias", "identity"),
        ("BatchNorm/moving_mean", "bn.running_mean", "identity"),
        ("BatchNorm/moving_variance", "bn.running_var", "identity"),
    ),
    "up": (("weights", "weight", "hwio_to_oihw"), ("biases", "bias", "identity")),
    "fc": (("weights", "weight", "transpose"), ("biases", "bias", "identity")),
}


def tensor_map(*, logits: bool = True, aux: bool = True) -> dict[str, tuple[str, str]]:
    """``{TF variable name: (PyTorch state-dict key, transform)}`` for every stored tensor."""
    mapping = {}
    for layer in layers(logits=logits, aux=aux):
        for tf_suffix, torch_suffix, transform in TENSORS[layer.kind]:
            tf_name = f"{SCOPE}/{layer.tf_scope}/{tf_suffix}"
            mapping[tf_name] = (f"{layer.torch_prefix}.{torch_suffix}", transform)
    return mapping
