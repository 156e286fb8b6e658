"""TF-Slim tensors (as the readers return them) → an irv2 state dict, strictly.

Every tensor of the network must be present exactly once with the right shape; tensors that are not
network weights (``global_step``, optimizer slots, anything outside ``InceptionResnetV2/``) are ignored
and reported; anything else inside the network's scope is an error, because it means the file was
written by a different network and a silent partial load would give a wrong model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from ..errors import WeightMismatchError
from .slim_names import SCOPE, tensor_map

LOGITS_WEIGHTS = f"{SCOPE}/Logits/Logits/weights"
AUX_SCOPE = f"{SCOPE}/AuxLogits/"

# Suffixes of optimizer and moving-average slots that training checkpoints carry beside the weights.
_SLOT_SUFFIXES = ("/Momentum", "/RMSProp", "/RMSProp_1", "/Adam", "/Adam_1", "/ExponentialMovingAverage")


class SlimLayout(NamedTuple):
    """What a TF-Slim checkpoint holds: its classifier width (0 = features only) and the aux head."""

    num_classes: int
    aux_logits: bool


@dataclass
class Conversion:
    state_dict: dict[str, torch.Tensor]
    ignored: list[str] = field(default_factory=list)


def inspect_layout(tensors: Mapping[str, np.ndarray]) -> SlimLayout:
    """Read the head layout off the tensor names and shapes (a feature-vector module has no Logits)."""
    logits = tensors.get(LOGITS_WEIGHTS)
    num_classes = int(logits.shape[-1]) if logits is not None and logits.ndim == 2 else 0
    aux = num_classes > 0 and any(name.startswith(AUX_SCOPE) for name in tensors)
    return SlimLayout(num_classes, aux)


def _transform(array: np.ndarray, how: str) -> np.ndarray:
    if how == "hwio_to_oihw" and array.ndim == 4:
        return array.transpose(3, 2, 0, 1)  # TF conv kernels are [kh, kw, in, out]
    if how == "transpose" and array.ndim == 2:
        return array.T  # TF dense kernels are [in, out]
    return array  # wrong rank: left as is, so the shape check below names it


def slim_to_state_dict(
    tensors: Mapping[str, np.ndarray],
    expected: Mapping[str, torch.Size],
    *,
    layout: SlimLayout,
) -> Conversion:
    """Map TF-Slim variables onto ``expected`` (a target state dict's key → shape).

    Raises ``WeightMismatchError`` naming every missing, misshapen or unexpected tensor.
    """
    mapping = tensor_map(logits=layout.num_classes > 0, aux=layout.aux_logits)
    missing, misshapen, unexpected, ignored = [], [], [], []
    state: dict[str, torch.Tensor] = {}
    for tf_name, (key, how) in mapping.items():
        if tf_name not in tensors:
            missing.append(tf_name)
            continue
        array = np.asarray(tensors[tf_name])
        if array.dtype.kind != "f":
            misshapen.append(f"{tf_name}: dtype {array.dtype}, expected a float tensor")
            continue
        array = _transform(array, how)
        want = tuple(expected[key])
        if array.shape != want:
            misshapen.append(f"{tf_name}: shape {_tf_shape(array.shape, how)}, expected {_tf_shape(want, how)}")
            continue
        state[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    for name in tensors:
        if name in mapping:
            continue
        if not name.startswith(f"{SCOPE}/") or name.endswith(_SLOT_SUFFIXES):
            ignored.append(name)
        else:
            unexpected.append(name)
    problems = [
        *(f"missing tensor {name}" for name in missing),
        *(f"wrong tensor {text}" for text in misshapen),
        *(f"unexpected tensor {name} (not part of TF-Slim's inception_resnet_v2)" for name in unexpected),
    ]
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise WeightMismatchError(
            f"the checkpoint does not fit Inception-ResNet-v2 ({len(missing)} missing, {len(misshapen)} wrong, "
            f"{len(unexpected)} unexpected):\n  {shown}"
        )
    # TF-Slim's BatchNorm has no gamma (scale=False): the equivalent PyTorch weight is one.
    for key, shape in expected.items():
        if key not in state:
            if key.endswith("bn.weight"):
                state[key] = torch.ones(shape)
            elif key.endswith("num_batches_tracked"):
                state[key] = torch.zeros((), dtype=torch.long)
    return Conversion(state, ignored)


def _tf_shape(torch_shape: tuple[int, ...], how: str) -> list[int]:
    """Report shapes in TF's own layout, since that is what the user's file holds."""
    s = list(torch_shape)
    if how == "hwio_to_oihw" and len(s) == 4:
        return [s[2], s[3], s[1], s[0]]
    if how == "transpose" and len(s) == 2:
        return [s[1], s[0]]
    return s
