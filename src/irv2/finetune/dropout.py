"""Dropout whose noise belongs to the image, not to the process that happens to hold it.

``nn.Dropout`` draws its mask from the process's global generator, so the same image gets another mask
when it lands in another process or another position of a batch: a two-process run would train on
different noise than a one-process run. :class:`SampleDropout` draws each image's mask from a generator
seeded by ``(seed, epoch, image index)``, as the augmentation does, so the noise is a function of the
image and the epoch alone (also after ``--resume``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

# Keeps the dropout's generators apart from the augmentation's, which are seeded by (seed, epoch, index).
_STREAM = 1


class SampleDropout(nn.Dropout):
    """``nn.Dropout(p)`` with per-image masks; ``x [B, ...]`` → ``x * mask / (1 - p)``.

    In training mode, inside :func:`sample_noise` (which tells it the batch's image indices), image ``i``'s
    mask is drawn from ``numpy.random.default_rng((seed, epoch, i, 1))``. In eval mode it is the identity;
    in training mode without indices it is plain ``nn.Dropout``.
    """

    def __init__(self, p: float, seed: int) -> None:
        super().__init__(p)
        self.seed = seed
        self.epoch = 0
        self.samples: Sequence[int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or self.samples is None:
            return super().forward(x)
        if len(self.samples) != x.shape[0]:
            raise ValueError(f"{len(self.samples)} image indices for a batch of {x.shape[0]}")
        if x.shape[0] == 0:
            return x
        draws = [np.random.default_rng((self.seed, self.epoch, i, _STREAM)).random(x.shape[1:]) for i in self.samples]
        keep = torch.from_numpy(np.stack(draws) >= self.p).to(x.device, x.dtype)
        return x * keep / (1.0 - self.p)


@contextlib.contextmanager
def sample_noise(net: nn.Module, samples: torch.Tensor | None) -> Iterator[None]:
    """Within the block, the :class:`SampleDropout` layers of ``net`` draw for the images ``samples``
    (their indices in the training set, in batch order); None leaves them as they are."""
    layers = [m for m in net.modules() if isinstance(m, SampleDropout)] if samples is not None else []
    indices = samples.tolist() if samples is not None else None
    for layer in layers:
        layer.samples = indices
    try:
        yield
    finally:
        for layer in layers:
            layer.samples = None
