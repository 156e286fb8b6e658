"""One training epoch and one evaluation pass, shared by every mode.

The network is called as ``net(inputs, samples) -> (logits, aux_logits or None)``: :class:`TrainNet` for
the image modes, :class:`HeadNet` for linear mode's cached features; ``samples`` are the images' indices
in the training set, which seed their dropout. Losses are cross-entropy with label smoothing; with the
auxiliary head, TF-Slim's ``loss + aux_loss_weight * aux_loss``. Metrics are summed over all torchrun
processes, so every process sees the same numbers.

Each optimizer step follows the mean loss over the images of its global batches (see ``batches.py``),
however the processes share them: each process backpropagates the *sum* of its images' losses divided
by the step's image count, times the number of processes, which DDP's averaging of the processes'
gradients divides out again.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ..model import InceptionResNetV2
from .batches import GlobalBatches
from .distributed import Distributed
from .dropout import sample_noise
from .precision import autocast
from .progress import Progress


class TrainNet(nn.Module):
    """The network as training calls it: images ``[B, 3, H, W]`` in [0, 1] → ``(logits, aux or None)``.

    The [0, 1] → [-1, 1] step is the one ``irv2.Module`` (and the TF-Hub module) applies, so the saved
    network gets the inputs it will see at inference.
    """

    def __init__(self, model: InceptionResNetV2, *, aux: bool) -> None:
        super().__init__()
        self.model = model
        self.aux = aux

    def forward(
        self, images: torch.Tensor, samples: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = 2.0 * images - 1.0
        with sample_noise(self.model, samples):
            # The network's own mode decides (the epoch loop switches it, frozen units apart), not this wrapper's.
            if self.aux and self.model.training:
                return self.model.forward_with_aux(x)
            return self.model(x), None


class HeadNet(nn.Module):
    """Linear mode: cached features ``[B, 1536]`` → ``(logits, None)`` through dropout and the new classifier."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, features: torch.Tensor, samples: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        with sample_noise(self.head, samples):
            return self.head(features), None


@dataclass
class Objective:
    """What the loss is: label smoothing, and the weight of the auxiliary loss (0 without AuxLogits)."""

    label_smoothing: float = 0.1
    aux_loss_weight: float = 0.0

    def __call__(
        self, logits: torch.Tensor, aux: torch.Tensor | None, labels: torch.Tensor, *, reduction: str = "mean"
    ) -> torch.Tensor:
        """The loss over the batch: its ``mean`` over the images, or its ``sum``."""
        smoothing = self.label_smoothing
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=smoothing, reduction=reduction)
        if aux is not None and self.aux_loss_weight:
            aux_loss = F.cross_entropy(aux.float(), labels, label_smoothing=smoothing, reduction=reduction)
            loss = loss + self.aux_loss_weight * aux_loss
        return loss


@dataclass
class Evaluation:
    """Validation results over the whole validation set, in its order."""

    loss: float
    accuracy: float
    predictions: np.ndarray
    labels: np.ndarray


def train_epoch(
    net: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    objective: Objective,
    device: torch.device,
    dtype: torch.dtype | None,
    accumulate: int,
    dist: Distributed,
    progress: Progress,
    set_training: Callable[[bool], None],
) -> dict[str, float]:
    """One pass over ``loader`` (``(inputs, labels, samples)`` batches of this process's shares, from a
    :class:`GlobalBatches` batch sampler): forward under autocast, backward, an optimizer and scheduler step
    every ``accumulate`` global batches (and after the last one). Returns the epoch's mean loss (the
    optimised one, auxiliary term included), its accuracy (main head, dropout and augmentation on) and the
    last head lr.
    """
    if not isinstance(loader.batch_sampler, GlobalBatches):
        raise TypeError("train_epoch needs a DataLoader whose batch_sampler is a GlobalBatches")
    sizes = loader.batch_sampler.global_sizes
    set_training(True)
    optimizer.zero_grad(set_to_none=True)
    loss_sum = correct = count = 0.0
    lr = optimizer.param_groups[0]["lr"]
    for i, (inputs, labels, samples) in enumerate(loader):
        inputs = inputs.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        group_start = i - i % accumulate
        group = sizes[group_start : group_start + accumulate]
        steps_now = i == group_start + len(group) - 1
        # Under DDP, gradients are averaged across processes only on the batch that ends a group.
        sync = net.no_sync() if isinstance(net, DistributedDataParallel) and not steps_now else nullcontext()
        with sync:
            with autocast(device, dtype):
                logits, aux = net(inputs, samples)
            loss = objective(logits, aux, labels, reduction="sum")
            (loss * (dist.world_size / sum(group))).backward()
        if steps_now:
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
        loss_sum += float(loss.detach())
        correct += float((logits.detach().argmax(1) == labels).sum())
        count += labels.shape[0]
        progress.update(1, sizes[i], loss_sum / max(count, 1), correct / max(count, 1))
    loss_sum, correct, count = dist.sum([loss_sum, correct, count])
    return {"loss": loss_sum / max(count, 1), "accuracy": correct / max(count, 1), "lr": lr}


@torch.no_grad()
def evaluate(
    net: nn.Module,
    loader: DataLoader,
    *,
    objective: Objective,
    device: torch.device,
    dtype: torch.dtype | None,
    dist: Distributed,
    progress: Progress,
    set_training: Callable[[bool], None],
) -> Evaluation:
    """The main head on this process's share of the validation set (``loader`` yields ``(inputs, labels,
    positions)``), gathered from all processes and put back in order. Loss: label-smoothed cross-entropy,
    as in training (without the auxiliary term)."""
    set_training(False)
    logits_parts, label_parts, position_parts = [], [], []
    for inputs, labels, positions in loader:
        with autocast(device, dtype):
            logits, _ = net(inputs.to(device, non_blocking=True))
        logits_parts.append(logits.float().cpu())
        label_parts.append(labels)
        position_parts.append(positions)
        progress.update(1, labels.shape[0] * dist.world_size)
    local = (
        torch.cat(logits_parts) if logits_parts else torch.empty(0, 0),
        torch.cat(label_parts) if label_parts else torch.empty(0, dtype=torch.long),
        torch.cat(position_parts) if position_parts else torch.empty(0, dtype=torch.long),
    )
    parts = [p for p in dist.gather(local) if p[0].numel()]
    logits = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    order = torch.argsort(torch.cat([p[2] for p in parts]))
    logits, labels = logits[order], labels[order]
    loss = float(objective(logits, None, labels))
    predictions = logits.argmax(1)
    accuracy = int((predictions == labels).sum()) / max(len(labels), 1)  # exact: 38/40 is 0.95, not 0.94999999
    return Evaluation(loss, accuracy, predictions.numpy(), labels.numpy())
