"""Data shipped with irv2: one photo to try things on (``chelsea.jpg``, a tabby cat, CC0; see README.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def sample_image() -> Path:
    """Path of the photo shipped with irv2 (a tabby cat, CC0), for trying things out."""
    return Path(__file__).parent / "chelsea.jpg"


def sample_photos(size: int | tuple[int, int] = 299) -> np.ndarray:
    """The bundled photo and its mirror image, preprocessed as TF-Slim evaluates: ``[2, H, W, 3]`` float32 in
    [0, 1]. Two different images, so a batch axis fixed at 1, or a network blind to left and right, shows."""
    from ..preprocessing import load_image

    photo = load_image(sample_image(), size=size)
    return np.ascontiguousarray(np.stack([photo, photo[:, ::-1]]), dtype=np.float32)
