"""Helpers for the batch-job tests (tests/batch): many small images with broken ones among them, a fast
stand-in for the network, and ways to run the CLI (also under torchrun, and in the background to kill it)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

import irv2
from cli_runner import run_irv2
from irv2.model import NUM_FEATURES
from irv2.preprocessing import Preprocessing

# Positions (in sorted order) that hold a broken file instead of a photo.
BROKEN = {7: "truncated", 30: "empty", 31: "text", 95: "truncated"}


def make_images(root: Path, photo_arrays: dict[str, np.ndarray], count: int) -> list[str]:
    """``count`` small files (120x90 JPEG/PNG crops of the photos, flipped and shifted so no two are alike)
    in two folders, sorted as ``expand_inputs`` lists them; positions in :data:`BROKEN` are broken files."""
    photos = list(photo_arrays.values())
    paths = []
    for i in range(count):
        folder = root / ("a" if i < count // 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        kind = BROKEN.get(i)
        if kind == "truncated":
            whole = io.BytesIO()
            Image.fromarray(photos[i % len(photos)]).save(whole, "JPEG", quality=90)
            path = folder / f"{i:04d}.jpg"
            path.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 3])
        elif kind == "empty":
            path = folder / f"{i:04d}.png"
            path.write_bytes(b"")
        elif kind == "text":
            path = folder / f"{i:04d}.jpg"
            path.write_text("not an image\n")
        else:
            photo = photos[i % len(photos)]
            top, left = (i * 7) % (photo.shape[0] // 3), (i * 13) % (photo.shape[1] // 3)
            crop = photo[top : top + photo.shape[0] // 2, left : left + photo.shape[1] // 2]
            if i % 2:
                crop = crop[:, ::-1]
            image = Image.fromarray(np.ascontiguousarray(crop)).resize((120, 90))
            path = folder / f"{i:04d}.{'png' if i % 3 == 0 else 'jpg'}"
            image.save(path)
        paths.append(str(path))
    return paths


class FakeModule:
    """Stands in for ``irv2.Module`` in the job tests: a fixed random projection of the image's pixel
    means, so different images get different, reproducible rows, thousands of times faster than the network."""

    num_classes = 1001
    labels = irv2.imagenet_labels()
    device = torch.device("cpu")
    device_type = "cpu"
    preprocessing = Preprocessing()
    expected_image_size = preprocessing.image_size

    # The real method: a setting it records (or a new one it reads from the module) is one these tests see.
    run_settings = irv2.Module.run_settings

    def __init__(
        self,
        fail_after: int | None = None,
        *,
        weights_sha256: str = "fake",
        engine: str = "fake",
        dtype: str = "float32",
        calibration_sha256: str | None = None,
    ) -> None:
        self._weights_sha256, self.engine_name, self.precision = weights_sha256, engine, dtype
        self.engine = SimpleNamespace(calibration_sha256=calibration_sha256)
        rng = np.random.default_rng(0)
        self.projection = rng.standard_normal((9 * 9 * 3, NUM_FEATURES)).astype(np.float32) / 16
        self.head = rng.standard_normal((NUM_FEATURES, self.num_classes)).astype(np.float32) / 8
        self.calls = 0
        self.fail_after = fail_after

    def weights_sha256(self) -> str:
        return self._weights_sha256

    def __call__(self, images: np.ndarray, signature: str = "default") -> np.ndarray:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # as Ctrl-C in the middle of a run
        samples = np.asarray(images)[:, ::37, ::37, :].reshape(len(images), -1)  # 9 x 9 pixels per image
        features = np.tanh(samples @ self.projection)
        return features if signature == "image_feature_vector" else features @ self.head


def run_cli(*args, env: dict[str, str] | None = None, torchrun: int = 0, timeout: float = 600):
    """``python -m irv2 ARGS`` in a process of its own (cli_runner.py), or under ``torchrun --nproc-per-node N``."""
    environment = {**os.environ, **(env or {})}
    if not torchrun:
        return run_irv2(*args, env=environment, timeout=timeout)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={torchrun}"]
    command = [*launcher, "-m", "irv2", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout)


def start_cli(*args, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``python -m irv2 ARGS`` started in the background (to be killed)."""
    command = [sys.executable, "-m", "irv2", *map(str, args)]
    environment = {**os.environ, **(env or {})}
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment)
