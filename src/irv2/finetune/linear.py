"""Linear mode: the backbone runs once per image, its features are cached, and only a new head trains.

The features are exactly the TF-Hub ``image_feature_vector`` signature at ``--image-size``: TF-Slim eval
preprocessing, the backbone in inference mode (BatchNorm on its moving averages), global average pool,
1536 values. Because they are computed once, training images are not augmented in this mode; dropout
before the classifier still regularises the head.

Under torchrun each process extracts every ``world_size``-th image and the shards are all-gathered, so
extraction scales with the processes; the head then trains with DDP like the other modes.

The cache (``OUT/cache/features-<key>.npz``, numpy, no pickle) is keyed by a SHA-256 of the backbone's
tensors, the image size, the dtype and every image's path, size and modification time: any change
recomputes, a rerun or ``--resume`` reuses.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..atomic import atomic_write
from ..model import InceptionResNetV2
from .data import Sample
from .datasets import ImageDataset, IndexedDataset
from .distributed import Distributed
from .heads import head_parameter
from .precision import autocast, autocast_name
from .progress import Progress

CACHE_DIR = "cache"


def features_cache_key(
    model: InceptionResNetV2, samples: Sequence[Sample], image_size: int, dtype: torch.dtype | None
) -> str:
    """What the features depend on, hashed: backbone tensors, image size, dtype, the image files."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if head_parameter(name) or name.endswith("num_batches_tracked"):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    files = []
    for sample in samples:
        try:
            stat = os.stat(sample.path)
            files.append([sample.path, stat.st_size, stat.st_mtime_ns])
        except OSError:
            files.append([sample.path, None, None])
    extra = {"image_size": image_size, "dtype": autocast_name(dtype), "files": files, "version": 1}
    digest.update(json.dumps(extra, sort_keys=True).encode())
    return digest.hexdigest()[:20]


def cached_features(out: Path, key: str, count: int) -> torch.Tensor | None:
    """The cached features for ``key`` (``[count, 1536]``), or None when there are none that fit."""
    path = out / CACHE_DIR / f"features-{key}.npz"
    try:
        with np.load(path) as data:
            features = data["features"]
    except (OSError, KeyError, ValueError):
        return None
    return torch.from_numpy(features) if features.shape[0] == count else None


def save_features(out: Path, key: str, features: torch.Tensor) -> Path:
    """Write the cache file atomically (a crash never leaves a truncated cache that looks valid)."""
    folder = out / CACHE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"features-{key}.npz"
    with atomic_write(path) as f:
        np.savez(f, features=features.numpy())
    return path


@torch.inference_mode()
def extract_features(
    model: InceptionResNetV2,
    samples: Sequence[Sample],
    *,
    image_size: int,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
    dist: Distributed,
    workers: int,
    progress: Progress,
) -> torch.Tensor:
    """``[len(samples), 1536]`` float32 features on the CPU, in ``samples`` order (sharded over processes)."""
    model.eval()
    positions = dist.shard(len(samples))
    dataset = IndexedDataset(ImageDataset(samples, image_size, train=False), positions)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    progress.start("extracting features", len(loader))
    parts, indices = [], []
    for images, _, where in loader:
        x = 2.0 * images.to(device) - 1.0
        with autocast(device, dtype):
            features = model.forward_head(model.forward_features(x), pre_logits=True)
        parts.append(features.float().cpu())
        indices.append(where)
        progress.update(1, images.shape[0] * dist.world_size)
    progress.end()
    local = (
        torch.cat(parts) if parts else torch.empty(0, model.num_features),
        torch.cat(indices) if indices else torch.empty(0, dtype=torch.long),
    )
    gathered = dist.gather(local)
    features = torch.cat([g[0] for g in gathered])
    order = torch.argsort(torch.cat([g[1] for g in gathered]))
    return features[order].contiguous()
