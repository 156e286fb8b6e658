"""Folding the inference-time constants of the network into its convolutions.

In inference BatchNorm is an affine map per channel, ``y = (x - mean) / sqrt(var + eps) * gamma + beta``,
so ``bn(conv(x))`` is one convolution with rescaled weights and a bias. The residual scale of the
Inception-ResNet blocks (``x + scale * up(branches)``) likewise folds into the up-projection. The per-channel
factors are computed in float64 and each weight is multiplied once, so the folded network stays within a
few ulps of the original.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..model.layers import ConvBnAct


class ConvParams(NamedTuple):
    """A convolution with a bias, as plain tensors (no module, no autograd)."""

    weight: torch.Tensor  # [out, in, kh, kw]
    bias: torch.Tensor  # [out]
    stride: tuple[int, int]
    padding: tuple[int, int]


def fold_conv_bn(layer: ConvBnAct) -> ConvParams:
    """The convolution with a bias that computes ``layer.bn(layer.conv(x))`` (BatchNorm in inference mode)."""
    conv, bn = layer.conv, layer.bn
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(std)
    scale = gamma / std
    with torch.no_grad():
        # Written straight into the channels-last layout the fused kernels use: one pass, one allocation.
        weight = torch.empty_like(conv.weight, memory_format=torch.channels_last)
        torch.mul(conv.weight, scale.to(conv.weight.dtype)[:, None, None, None], out=weight)
        bias = (beta - bn.running_mean.double() * scale).to(conv.weight.dtype)
    return ConvParams(weight, bias, _pair(conv.stride), _pair(conv.padding))


def plain_conv(conv: nn.Conv2d, factor: float = 1.0) -> ConvParams:
    """``factor * conv(x)`` as :class:`ConvParams` (the residual up-projections have a bias of their own)."""
    with torch.no_grad():
        weight = torch.empty_like(conv.weight, memory_format=torch.channels_last)
        torch.mul(conv.weight, factor, out=weight)
        bias = conv.bias * factor if conv.bias is not None else torch.zeros_like(weight[:, 0, 0, 0])
    return ConvParams(weight, bias, _pair(conv.stride), _pair(conv.padding))


def merge_convs(convs: list[ConvParams]) -> ConvParams:
    """One convolution whose output channels are those of ``convs`` (same input, kernel and stride) in order.

    Several 1x1 branches of an Inception block read the same input; one wider convolution reads it once
    and keeps the matrix multiply large, which is what oneDNN and cuDNN are fastest at.
    """
    first = convs[0]
    for conv in convs[1:]:
        if (conv.weight.shape[1:], conv.stride, conv.padding) != (first.weight.shape[1:], first.stride, first.padding):
            raise ValueError("only convolutions with the same input and geometry can be merged")
    weight = torch.cat([conv.weight for conv in convs])
    bias = torch.cat([conv.bias for conv in convs])
    return ConvParams(weight, bias, first.stride, first.padding)


def _pair(value: int | tuple[int, ...] | str) -> tuple[int, int]:
    if isinstance(value, str):
        raise ValueError(f"string padding {value!r} cannot be folded; the network uses explicit padding")
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))
