"""The images an int8 engine is calibrated on: their checks and their digest, shared by every int8 engine.

Static quantization fixes each activation's range from what it sees on these images, so they must be the
module's own input (its size, values in [0, 1]) and typical of what it will classify.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np


def check_calibration(images: np.ndarray | None, image_size: tuple[int, int], *, stacklevel: int = 6) -> np.ndarray:
    """``images`` as float32 ``[N, H, W, 3]``, or ValueError saying what is wrong with them and what to pass.

    ``stacklevel`` points the few-images warning at the caller's line (the default: past an engine's constructor
    and builder, and ``irv2.load``)."""
    if images is None:
        raise ValueError(
            "int8 needs calibration images, typical of what you will classify: pass calibration= (an array "
            "[N, H, W, 3] in [0, 1], or image paths) to irv2.load, or --calibration to the command line"
        )
    array = np.asarray(images, dtype=np.float32)
    if array.ndim != 4 or array.shape[-1] != 3 or len(array) == 0:
        raise ValueError(f"calibration images must be a batch [N, H, W, 3] with N >= 1, got {array.shape}")
    if tuple(array.shape[1:3]) != image_size:
        raise ValueError(
            f"calibration images must be {image_size[0]} x {image_size[1]}, the module's input size, got "
            f"{array.shape[1]} x {array.shape[2]}: pass image paths to have them preprocessed as the module's"
        )
    if array.min() < 0.0 or array.max() > 1.0:
        raise ValueError("calibration images must have values in [0, 1], as the module's input: divide by 255")
    if len(array) < 8:
        warnings.warn(
            f"int8 calibrated on {len(array)} images: activation ranges from so few images may clip yours; "
            "32-128 typical images are better",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
    return array


def images_sha256(images: np.ndarray) -> str:
    """The sha256 of a calibration set (its shape and float32 values)."""
    array = np.ascontiguousarray(images, dtype=np.float32)
    return hashlib.sha256(f"{list(array.shape)}\n".encode() + array.tobytes()).hexdigest()
