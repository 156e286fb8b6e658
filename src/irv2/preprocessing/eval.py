"""TF-Slim's evaluation preprocessing (``inception_preprocessing.preprocess_for_eval``) without TF.

The pipeline is: convert to float32 in [0, 1], central crop (0.875), legacy bilinear resize to
299 x 299. The last TF-Slim step, ``(x - 0.5) * 2``, is left out on purpose: irv2's module takes
[0, 1] input like the TF-Hub module and maps it to [-1, 1] itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .decode import DEFAULT_MAX_PIXELS, ImageSource, decode_native
from .resize import _check_image, _normalise_size, _resize, central_crop

__all__ = ["load_image", "preprocess_for_eval"]


def _value_scale(dtype: np.dtype) -> float | None:
    if dtype == np.uint8 or dtype == np.uint16:
        return 1.0 / np.iinfo(dtype).max
    if np.issubdtype(dtype, np.floating):
        return None
    raise TypeError(f"expected uint8, uint16 or floating-point pixels, got {dtype}")


def preprocess_for_eval(
    image: np.ndarray,
    size: int | Sequence[int] = 299,
    central_fraction: float | None = 0.875,
) -> np.ndarray:
    """Central crop then TF's legacy bilinear resize, as TF-Slim evaluation does.

    Args:
        image: ``[H, W, C]`` or ``[N, H, W, C]``; uint8 (scaled by 1/255), uint16 (by 1/65535) or
            floating point already in [0, 1], as ``tf.image.convert_image_dtype`` would treat it.
            Integer images are cropped before conversion, so huge photos are never converted whole.
        size: output side (int) or ``(height, width)``; 299 for Inception-ResNet-v2.
        central_fraction: fraction of each side kept by ``tf.image.central_crop``; ``None`` or
            1.0 skips the crop.

    Returns:
        float32 ``[size, size, C]`` (or ``[N, size, size, C]``) in [0, 1]. The channel count is
        unchanged. The [0, 1] → [-1, 1] mapping is not applied here.
    """
    image = np.asarray(image)
    _check_image(image, "preprocess_for_eval")
    value_scale = _value_scale(image.dtype)
    if central_fraction is not None:
        image = central_crop(image, central_fraction)
    return _resize(image, _normalise_size(size), value_scale=value_scale)


def load_image(
    source: ImageSource,
    size: int | Sequence[int] = 299,
    central_fraction: float | None = 0.875,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    draft: bool = False,
) -> np.ndarray:
    """Decode an image file and preprocess it for Inception-ResNet-v2 evaluation.

    Equivalent to ``preprocess_for_eval(decode_image(source), size, central_fraction)`` but
    crops and resizes the decoded 8- or 16-bit samples before converting them to float, so an
    80 MP photo costs little more than its decoded bytes.

    Args:
        source: a path, the encoded file as ``bytes``, or a binary file object.
        size: output side (int) or ``(height, width)``; 299 for Inception-ResNet-v2.
        central_fraction: as in :func:`preprocess_for_eval`.
        max_pixels: decompression-bomb guard, as in :func:`~irv2.preprocessing.decode_image`.
        draft: decode large JPEGs at a reduced scale first (libjpeg's DCT scaling: 1/2, 1/4 or 1/8,
            the smallest that still leaves a central crop of at least ``size``), then crop and resize
            exactly. Much faster on large photos (docs/performance.md); the result is a smoother (less
            aliased) version of the exact one, which it equals on images too small to reduce (under about
            2 x 342 px).

    Returns:
        float32 ``[size, size, 3]`` RGB in [0, 1]; add a batch axis with ``x[None]``.

    Raises:
        ImageError: the file cannot be decoded (message starts with the path or ``<bytes>``).
    """
    draft_min_side = None
    if draft:
        # The crop keeps central_fraction of each side; it must still cover the output size.
        draft_min_side = math.ceil(max(_normalise_size(size)) / (central_fraction or 1.0))
    pixels = decode_native(source, max_pixels=max_pixels, draft_min_side=draft_min_side)
    out = preprocess_for_eval(pixels, size, central_fraction)
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return out
