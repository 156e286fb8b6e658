"""Central crop and TF's legacy bilinear resize, matching TensorFlow's float32 arithmetic.

Both functions take numpy arrays in NHWC order, a single image ``[H, W, C]`` or a batch
``[N, H, W, C]``. They reproduce the two geometric steps of TF-Slim's ``preprocess_for_eval``:
``tf.image.central_crop`` and ``tf.compat.v1.image.resize_bilinear(..., align_corners=False)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["central_crop", "resize_bilinear_tf_legacy"]


def _check_image(image: np.ndarray, what: str) -> None:
    if image.ndim not in (3, 4):
        raise ValueError(f"{what} expects an image [H, W, C] or a batch [N, H, W, C], got shape {image.shape}")


def central_crop(image: np.ndarray, central_fraction: float = 0.875) -> np.ndarray:
    """Crop the central region of ``image``, exactly as ``tf.image.central_crop``.

    Args:
        image: ``[H, W, C]`` or ``[N, H, W, C]`` array of any dtype.
        central_fraction: fraction of each side to keep, in (0, 1]. 1.0 returns ``image`` as is.

    Returns:
        A view of ``image`` (no copy) of shape ``[h, w, C]`` or ``[N, h, w, C]`` where, per side,
        ``start = int((H - H * central_fraction) / 2)`` and ``h = H - 2 * start``. As in TF the
        offset is computed in float64 and truncated, so the crop may keep slightly more than the
        fraction asks for, and it always stays centred (equal margins on both sides).
    """
    image = np.asarray(image)
    _check_image(image, "central_crop")
    central_fraction = float(central_fraction)
    if not 0.0 < central_fraction <= 1.0:
        raise ValueError(f"central_fraction must be in (0, 1], got {central_fraction}")
    if central_fraction == 1.0:
        return image
    height, width = image.shape[-3], image.shape[-2]
    # Python floats are float64, which is what TF uses for static shapes; int() truncates like TF.
    top = int((float(height) - float(height) * central_fraction) / 2)
    left = int((float(width) - float(width) * central_fraction) / 2)
    return image[..., top : height - top, left : width - left, :]


def _interpolation_table(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights along one axis, with TF's float32 arithmetic.

    TF's legacy scaler maps output index ``i`` to ``i * (in_size / out_size)`` (no half-pixel
    offset), with the scale and the product rounded to float32.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    position = np.arange(out_size, dtype=np.float32) * scale
    lower_f = np.floor(position)
    lower = np.maximum(lower_f.astype(np.int64), 0)
    upper = np.minimum(np.ceil(position).astype(np.int64), in_size - 1)
    weight = position - lower_f
    return lower, upper, weight


def _to_float32(values: np.ndarray, value_scale: float | None) -> np.ndarray:
    out = values.astype(np.float32, copy=True)
    if value_scale is not None:
        # float32 multiply by the float32 reciprocal: what tf.image.convert_image_dtype does.
        out *= np.float32(value_scale)
    return out


def _resize(image: np.ndarray, size: tuple[int, int], value_scale: float | None) -> np.ndarray:
    """Legacy bilinear resize; integer input is converted (times ``value_scale``) after gathering.

    Converting to float after picking the needed samples keeps memory small for huge photos, and
    gives the same numbers as converting first, since the conversion is element-wise.
    """
    out_h, out_w = size
    in_h, in_w = image.shape[-3], image.shape[-2]
    if in_h < 1 or in_w < 1:
        raise ValueError(f"cannot resize an empty image of shape {image.shape}")
    y_lo, y_hi, y_w = _interpolation_table(in_h, out_h)
    x_lo, x_hi, x_w = _interpolation_table(in_w, out_w)
    y_w = y_w[:, None, None]
    x_w = x_w[:, None]

    # Gather the four corner samples of every output pixel in the image's own type (uint8 for photos), then
    # convert only those (4 x 299 x 299 values): rows first by fancy indexing (np.take would copy a strided
    # crop whole), then columns with np.take on the compact row copies.
    rows_lo, rows_hi = image[..., y_lo, :, :], image[..., y_hi, :, :]
    top_left = _to_float32(np.take(rows_lo, x_lo, axis=-2), value_scale)
    top_right = _to_float32(np.take(rows_lo, x_hi, axis=-2), value_scale)
    bottom_left = _to_float32(np.take(rows_hi, x_lo, axis=-2), value_scale)
    bottom_right = _to_float32(np.take(rows_hi, x_hi, axis=-2), value_scale)
    del rows_lo, rows_hi
    # Same operation order as TF's compute_lerp, each step rounded to float32 (``a + (b - a) * w``), done in
    # place in the gathered arrays: every fresh 1 MB temporary costs page faults.
    top = _lerp_into(top_right, top_left, x_w)
    bottom = _lerp_into(bottom_right, bottom_left, x_w)
    return _lerp_into(bottom, top, y_w)


def _lerp_into(b: np.ndarray, a: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``a + (b - a) * weight``, written into ``b``."""
    np.subtract(b, a, out=b)
    b *= weight
    b += a
    return b


def _normalise_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        out_h = out_w = int(size)
    else:
        dims = tuple(int(s) for s in size)
        if len(dims) != 2:
            raise ValueError(f"size must be an int or (height, width), got {size!r}")
        out_h, out_w = dims
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size must be positive, got {(out_h, out_w)}")
    return out_h, out_w


def resize_bilinear_tf_legacy(image: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Bilinear resize identical to ``tf.compat.v1.image.resize_bilinear(align_corners=False)``.

    This is TF's legacy op (``half_pixel_centers=False``) used by TF-Slim evaluation: output pixel
    ``i`` samples source coordinate ``i * in_size / out_size``, so the image is sampled from its
    top-left corner, not from pixel centres as in PyTorch's ``align_corners=False``. All arithmetic
    is float32 in TF's order, so results agree with TF to within float32 rounding (usually exactly).

    Args:
        image: ``[H, W, C]`` or ``[N, H, W, C]`` array of any real dtype. Values are used as they
            are (integers are cast to float32, not rescaled), as in TF.
        size: output ``(height, width)``, or one int for a square output.

    Returns:
        float32 array ``[out_h, out_w, C]`` or ``[N, out_h, out_w, C]``.
    """
    image = np.asarray(image)
    _check_image(image, "resize_bilinear_tf_legacy")
    return _resize(image, _normalise_size(size), value_scale=None)
