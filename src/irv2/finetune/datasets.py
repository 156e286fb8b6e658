"""PyTorch datasets over a list of labelled images: augmented for training, TF-Slim eval preprocessing
for validation and feature extraction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DatasetError, Irv2Error
from ..preprocessing.decode import decode_native
from .augment import eval_transform, train_transform
from .data import Sample


class ImageDataset(Dataset):
    """``(image [3, size, size] float32 in [0, 1], label)`` for each sample, decoded on access.

    With ``train=True`` every access draws a fresh augmentation from a generator seeded by
    ``(seed, epoch, index)``: the same image gets the same crop in a rerun or after ``--resume``, and a
    different one every epoch, independent of DataLoader workers and torchrun processes. Call
    :meth:`set_epoch` before each epoch.
    """

    def __init__(
        self, samples: Sequence[Sample], image_size: int, *, train: bool, seed: int = 0, color_jitter: bool = False
    ) -> None:
        self.samples = list(samples)
        self.image_size = image_size
        self.train = train
        self.seed = seed
        self.color_jitter = color_jitter
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[index]
        try:
            pixels = decode_native(sample.path)
        except (Irv2Error, OSError, ValueError) as exc:
            # Every file decoded when the dataset was listed; one that fails now changed during training.
            raise DatasetError(f"{sample.path}: became unreadable during training ({exc})") from None
        if self.train:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            image = train_transform(pixels, self.image_size, rng, color_jitter=self.color_jitter)
        else:
            image = eval_transform(pixels, self.image_size)
        return torch.from_numpy(image).permute(2, 0, 1), sample.label


class IndexedDataset(Dataset):
    """``(item, position)`` pairs of another dataset, so that results gathered from several processes can
    be put back in dataset order."""

    def __init__(self, dataset: Dataset, positions: Sequence[int]) -> None:
        self.dataset = dataset
        self.positions = list(positions)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        image, label = self.dataset[self.positions[i]]
        return image, label, self.positions[i]


class TensorPairDataset(Dataset):
    """Cached features ``[N, D]`` with labels ``[N]``: what linear mode trains the head on."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features = features
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.features[index], int(self.labels[index])
