"""Whether a network's weights changed since an engine last looked (``model_fingerprint``), and what they are
(``weights_sha256``).

Engines keep a fused, cast, traced or exported copy of the plain network, and must never serve it after the
weights change: an optimizer step or ``load_state_dict`` (each tensor's in-place counter moves), ``.to`` or
``.half`` (each tensor gets new storage), or a parameter, buffer or submodule replaced by assignment (other
tensor objects). The question is asked before every call, so the answer is one tight walk over the module
tree's tables, reading each tensor's identity, in-place counter and storage address: no copy of any weight,
and no process-wide hook (a library must not change torch's global state). docs/performance.md gives its
cost beside a forward pass.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from .kernels import tensor_version

_data_ptr = torch.Tensor.data_ptr


def model_fingerprint(model: nn.Module) -> int:
    """A number that changes whenever a parameter or buffer of ``model`` is replaced, moved, cast or modified
    in place. What bypasses ``nn.Module``'s tables entirely (a tensor kept elsewhere) is not seen."""
    tensors = _tensors_of(model)
    return hash((tuple(map(id, tensors)), tuple(map(tensor_version, tensors)), tuple(map(_data_ptr, tensors))))


def weights_sha256(model: nn.Module) -> str:
    """The sha256 of the network's state dict (names, shapes and float32 values, in the state dict's order):
    the same weights give the same digest whatever file, device or precision they came in."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        value = tensor.detach().to(device="cpu")
        if value.is_floating_point():
            value = value.to(torch.float32)
        digest.update(f"{name} {value.dtype} {list(value.shape)}\n".encode())
        digest.update(value.contiguous().numpy().tobytes())
    return digest.hexdigest()


def _tensors_of(model: nn.Module) -> list[torch.Tensor]:
    """Every parameter and buffer under ``model``: ``modules()`` without the dotted names it builds, and
    without visiting the empty tables of the many leaf modules (ReLU, pooling)."""
    found: list[torch.Tensor] = []
    extend = found.extend
    pending = [model]
    pop, push = pending.pop, pending.extend
    while pending:
        module = pop()
        if module._parameters:
            extend(module._parameters.values())
        if module._buffers:
            extend(module._buffers.values())
        if module._modules:
            push(child for child in module._modules.values() if child is not None)
    return [t for t in found if t is not None]  # a slot registered as None (a convolution without bias)
