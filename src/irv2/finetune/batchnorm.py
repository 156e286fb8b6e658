"""BatchNorm over the global batch under torchrun, on any backend.

In training mode BatchNorm normalises with its batch's mean and variance, so N processes each
normalising their own share would train another network than one process normalising the whole global
batch. Under torchrun every trained BatchNorm therefore uses the statistics of the global batch:
PyTorch's ``nn.SyncBatchNorm`` on CUDA, and :class:`GlobalBatchNorm2d` elsewhere (``SyncBatchNorm``
refuses CPU tensors, so gloo runs could not use it).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class _AllReduceSum(torch.autograd.Function):
    """A summing all-reduce that gradients flow through (each process's input feeds every process's output,
    so its gradient is the sum of theirs). ``torch.distributed.nn.functional.all_reduce`` is the same
    function, but recent PyTorch deprecates it with a FutureWarning that would reach the user's stderr."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


def _spans_processes() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training-mode statistics cover the images of every process (the default group).

    One all-reduce per layer sums, per channel, the values, their squares and their count; the mean and the
    biased variance normalise, and the running statistics take the unbiased variance with ``momentum``, as
    ``nn.BatchNorm2d`` on the whole batch does. A process may hold no image (a short last batch). In eval
    mode, or without a process group of two or more, it *is* ``nn.BatchNorm2d`` (its own code runs).

    The sums are taken around the running mean rather than zero: with a mean far from zero, the mean of
    squares minus the squared mean would cancel most of its float32 digits.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _spans_processes()):
            return super().forward(x)
        self._check_input_dim(x)
        channels = x.shape[1]
        centre = self.running_mean if self.running_mean is not None else x.new_zeros(channels, dtype=torch.float32)
        shifted = x.float() - centre.view(1, -1, 1, 1)
        count = shifted.new_tensor([x.numel() // channels])
        local = torch.cat([shifted.sum((0, 2, 3)), (shifted * shifted).sum((0, 2, 3)), count])
        total = _AllReduceSum.apply(local.double())  # float64: exact counts, and sums of many processes
        sums, squares, n = total[:channels], total[channels:-1], total[-1]
        if n.item() < 2:
            raise ValueError(f"BatchNorm in training mode needs more than 1 value per channel, got {int(n.item())}")
        mean = sums / n
        variance = (squares / n - mean * mean).clamp_min(0.0)
        y = (shifted - mean.float().view(1, -1, 1, 1)) * torch.rsqrt(variance + self.eps).float().view(1, -1, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        if self.track_running_stats:
            self._update_running_stats(centre + mean.detach().float(), (variance.detach() * n / (n - 1)).float())
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, unbiased_variance: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1.0 - factor).add_(unbiased_variance, alpha=factor)


def global_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every ``nn.BatchNorm2d`` normalising over the global batch (call it under torchrun,
    before building the optimizer: parameters are shared, modules replaced)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    _replace(model)
    return model


def _replace(module: nn.Module) -> None:
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            setattr(module, name, _global_copy(child))
        else:
            _replace(child)


def _global_copy(layer: nn.BatchNorm2d) -> GlobalBatchNorm2d:
    copy = GlobalBatchNorm2d(layer.num_features, layer.eps, layer.momentum, layer.affine, layer.track_running_stats)
    # The same parameter and buffer objects (requires_grad and values included), not copies of them.
    if layer.affine:
        copy.weight, copy.bias = layer.weight, layer.bias
    if layer.track_running_stats:
        copy.running_mean, copy.running_var = layer.running_mean, layer.running_var
        copy.num_batches_tracked = layer.num_batches_tracked
    copy.train(layer.training)
    return copy
