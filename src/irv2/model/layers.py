"""The two building blocks every TF-Slim layer of the network reduces to."""

from __future__ import annotations

import torch
from torch import nn

# TF-Slim's inception_resnet_v2_arg_scope: batch_norm_epsilon=0.001 (PyTorch's default is 1e-5).
BN_EPS = 1e-3
# TF-Slim's batch_norm_decay=0.9997 is a weight on the *old* moving average; PyTorch's momentum is the
# weight on the new batch statistic, so the same decay is momentum = 1 - 0.9997.
BN_MOMENTUM = 1 - 0.9997


class ConvBnAct(nn.Module):
    """``slim.conv2d`` inside the arg scope: conv without bias → BatchNorm → ReLU.

    TF-Slim's ``batch_norm`` defaults to ``scale=False``: there is a learned offset (beta) but no learned
    scale (gamma). The BatchNorm here keeps a ``weight`` tensor so that timm checkpoints, which store gamma,
    load as they are; it is fixed at one and frozen, which is the same function TF-Slim computes.

    ``padding`` is the symmetric PyTorch padding; SAME with stride 1 and an odd kernel is always symmetric,
    and every stride-2 layer of the default graph is VALID (padding 0), so no asymmetric case arises.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.bn.weight.requires_grad_(False)
        self.act = nn.ReLU(inplace=True) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def same(kernel_size: int | tuple[int, int]) -> tuple[int, int]:
    """PyTorch padding equal to TF's SAME for a stride-1, odd-sized kernel."""
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return kh // 2, kw // 2
