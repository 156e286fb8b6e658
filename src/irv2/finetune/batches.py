"""Global batches: the same images in the same steps whatever the number of processes.

``--batch-size B`` is the *global* batch: the images of one optimizer step (before gradient
accumulation), summed over all torchrun processes. Each epoch draws one permutation of the training set
from a generator seeded by ``(seed, epoch)``, cuts it into global batches of B (the last one shorter when
B does not divide the set), and gives each process its slice of every global batch:

* a global batch of ``b`` images over ``N`` processes: process ``r`` takes a contiguous slice of
  ``b // N`` images, plus one more for the first ``b % N`` processes (10 over 4: 3, 3, 2, 2);
* a short last batch may leave a process with no image at all; it still takes part in the step (its
  share of the loss is zero), so every process runs the same number of steps;
* where BatchNorm trains (``full``, ``last-blocks``), a last global batch of a single image is left out:
  BatchNorm cannot normalise one image (one value per channel in the 8 x 8 layers at small sizes). The
  rule looks at the global batch only, so it is the same for any number of processes.

One process therefore sees exactly the global batches that N processes share, in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from torch.utils.data import Dataset, Sampler, default_collate


def share(size: int, world_size: int, rank: int) -> tuple[int, int]:
    """``(start, stop)`` of process ``rank``'s slice of a global batch of ``size`` images."""
    base, extra = divmod(size, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def per_process(batch_size: int, world_size: int) -> int:
    """The most images one process holds of a global batch: its batch size for evaluation too."""
    return math.ceil(batch_size / world_size)


class GlobalBatches(Sampler[list[int]]):
    """A batch sampler yielding this process's share of each global batch of the epoch (see the module notes).

    Args:
        count: images in the training set.
        batch_size: the global batch.
        seed: with the epoch, seeds the order.
        world_size, rank: the processes, and this one.
        drop_single: leave out a last global batch of one image (BatchNorm in training mode).
    """

    def __init__(
        self, count: int, batch_size: int, *, seed: int, world_size: int = 1, rank: int = 0, drop_single: bool = False
    ) -> None:
        if batch_size < world_size:
            raise ValueError(f"a global batch of {batch_size} cannot be shared by {world_size} processes")
        self.count = count
        self.batch_size = batch_size
        self.seed = seed
        self.world_size = world_size
        self.rank = rank
        self.epoch = 0
        full, rest = divmod(count, batch_size)
        last = [rest] if rest > 1 or (rest == 1 and not drop_single) else []
        self.global_sizes = [batch_size] * full + last  # the same on every process

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.global_sizes)

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng((self.seed, self.epoch)).permutation(self.count)
        start = 0
        for size in self.global_sizes:
            low, high = share(size, self.world_size, self.rank)
            yield order[start + low : start + high].tolist()
            start += size


class ShareCollate:
    """``default_collate``, and for an empty share a batch of no items shaped like the dataset's first one
    (``default_collate`` cannot tell the shapes of nothing)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __call__(self, items: list):
        if items:
            return default_collate(items)
        return [part[:0] for part in default_collate([self.dataset[0]])]
