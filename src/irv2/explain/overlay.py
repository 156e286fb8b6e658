"""A Grad-CAM map drawn over the image the module saw, with the class and its probability beneath.

The map (8 x 8 at 299 px) is upsampled bilinearly to the image, coloured with the jet colormap (blue for
little evidence, red for the most) and blended in with an opacity that grows with the map: where the class
owes nothing, the photo shows unchanged. Below it a strip carries the caption (``tabby 87.3%``) in Pillow's
default font. Everything is numpy and Pillow: no plotting library.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..atomic import write_bytes

STRIP_HEIGHT = 22  # pixels below the image, holding the caption
FONT_SIZE = 14
DEFAULT_ALPHA = 0.6  # opacity of the colour where the map is 1

# The jet colormap's red, green and blue as (position, value) points: matplotlib's segment data (``_jet_data``),
# the colours Grad-CAM figures are usually drawn in.
JET = (
    ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
    ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
    ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),
)


def caption(label: str | None, score: float, index: int | None = None) -> str:
    """``"tabby 87.3%"``; a module without labels names the class by index (``"class 2 40.0%"``)."""
    name = label if label is not None else f"class {index}"
    return f"{name} {score:.1%}"


def jet(values: np.ndarray) -> np.ndarray:
    """The jet colormap, as matplotlib defines it: values in [0, 1] → RGB in [0, 1], shape ``[..., 3]``
    (0 dark blue, 0.5 green-cyan, 1 dark red); each channel piecewise linear between the points of
    :data:`JET`."""
    x = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)
    channels = [np.interp(x, *zip(*points, strict=True)) for points in JET]
    return np.stack(channels, axis=-1).astype(np.float32)


def upsample(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``heatmap`` ``[h, w]`` resized to ``size`` = ``(H, W)`` by bilinear interpolation with pixel centres
    aligned (as ``torch.nn.functional.interpolate(..., align_corners=False)``): each map cell covers its share
    of the image, and the values stay within the map's range."""
    heatmap = np.asarray(heatmap, dtype=np.float32)
    rows = _interpolation(heatmap.shape[0], size[0])
    cols = _interpolation(heatmap.shape[1], size[1])
    along_rows = heatmap[rows[0]] * (1 - rows[2])[:, None] + heatmap[rows[1]] * rows[2][:, None]
    return along_rows[:, cols[0]] * (1 - cols[2]) + along_rows[:, cols[1]] * cols[2]


def blend(image: np.ndarray, heatmap: np.ndarray, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """``image`` ``[H, W, 3]`` in [0, 1] with ``heatmap`` ``[h, w]`` in [0, 1] coloured over it: uint8
    ``[H, W, 3]``."""
    image = np.asarray(image, dtype=np.float32)
    heat = upsample(heatmap, image.shape[:2])
    opacity = (alpha * heat)[..., None]
    mixed = (1.0 - opacity) * np.clip(image, 0.0, 1.0) + opacity * jet(heat)
    return np.round(mixed * 255.0).astype(np.uint8)


def render_overlay(image: Any, heatmap: Any, text: str, *, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """The blended image with ``text`` in a strip beneath: uint8 ``[H + STRIP_HEIGHT, W, 3]``.

    ``image``: the module's input, ``[H, W, 3]`` in [0, 1] (``module.preprocess(path)``); ``heatmap``: a map
    of ``irv2.explain`` (numpy or tensor), ``[h, w]``."""
    image, heatmap = _numpy(image), _numpy(heatmap)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image: expected [H, W, 3] in [0, 1], got shape {image.shape}")
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap: expected one map [h, w], got shape {heatmap.shape}")
    picture = Image.new("RGB", (image.shape[1], image.shape[0] + STRIP_HEIGHT), "black")
    picture.paste(Image.fromarray(blend(image, heatmap, alpha)), (0, 0))
    draw = ImageDraw.Draw(picture)
    font = _font()
    margin = 4
    fitted = _fit(draw, text, font, image.shape[1] - 2 * margin)
    top = image.shape[0] + (STRIP_HEIGHT - FONT_SIZE) // 2 - 1
    draw.text((margin, top), fitted, fill="white", font=font)
    return np.asarray(picture)


def write_overlay_png(
    path: str | os.PathLike[str], image: Any, heatmap: Any, text: str, *, alpha: float = DEFAULT_ALPHA
) -> None:
    """:func:`render_overlay`, written to ``path`` as PNG atomically (a reader never sees half a file)."""
    buffer = io.BytesIO()
    Image.fromarray(render_overlay(image, heatmap, text, alpha=alpha)).save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())


def _interpolation(source: int, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each target pixel: the two source pixels around its centre and the weight of the second."""
    centres = (np.arange(target, dtype=np.float64) + 0.5) * (source / target) - 0.5
    centres = np.clip(centres, 0.0, source - 1)
    low = np.floor(centres).astype(np.intp)
    high = np.minimum(low + 1, source - 1)
    return low, high, (centres - low).astype(np.float32)


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, maybe on a GPU
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except TypeError:  # Pillow 10.0: the bitmap font, in its one size
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """``text``, shortened with an ellipsis if it is wider than ``width`` pixels (a long label on a small
    image); the probability at its end is what matters most, so the label gives way."""
    if draw.textlength(text, font=font) <= width:
        return text
    label, _, score = text.rpartition(" ")
    while label and draw.textlength(f"{label}… {score}", font=font) > width:
        label = label[:-1]
    return f"{label}… {score}" if label else score
