"""Request payloads → the module's input: image files and float arrays, checked against the server's limits.

Image files are preprocessed with the module's own recipe (``module.preprocess``), and float arrays must come
at the module's size (``module.expected_image_size``): a module fine-tuned at 160 px is served at 160 px.
Everything here is synchronous and CPU-bound; the app runs it on its decode threads, never on the event loop.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..api import Module
from ..errors import ImageError, RequestError


def b64decode(text: Any, what: str) -> bytes:
    """Standard or URL-safe base64 (padding optional) → bytes; anything else is a 400 naming ``what``."""
    if not isinstance(text, str):
        raise RequestError(f"{what}: expected a base64 string, got {type(text).__name__}")
    cleaned = "".join(text.split())  # line breaks are common in base64 pasted from tools such as `base64`
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        if "-" in cleaned or "_" in cleaned:
            return base64.urlsafe_b64decode(cleaned)
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"{what}: not valid base64") from None


def decode_image_file(data: bytes, module: Module, max_pixels: int, what: str) -> np.ndarray:
    """An encoded image file → float32 ``[H, W, 3]`` in [0, 1], as ``module.preprocess`` makes it.

    The pixel count is checked on the header before any pixel is decoded (``load_image``'s ``max_pixels``),
    which is what stops a decompression bomb: a tiny PNG that declares 20000 x 20000 never allocates its
    400 MP. Pillow's own process-wide ``Image.MAX_IMAGE_PIXELS`` still applies on top and is left alone.
    """
    if not data:
        raise RequestError(f"{what}: empty image")
    try:
        return module.preprocess(data, max_pixels=max_pixels)
    except ImageError as exc:
        message = str(exc).removeprefix("<bytes>: ")
        raise RequestError(f"{what}: {message}") from None
    except MemoryError:
        raise RequestError(f"{what}: not enough memory to decode this image", status=503) from None


def decode_image_file_sized(
    data: bytes, module: Module, max_pixels: int, what: str
) -> tuple[np.ndarray, tuple[int, int]]:
    """As :func:`decode_image_file`, with the ``(height, width)`` of the upright photo the input was cut from.

    The file is decoded once (upright by EXIF, the pixel count checked on the header) and those pixels go
    through ``module.preprocess``, which is what it does with the file itself.
    """
    from ..preprocessing.decode import decode_native

    if not data:
        raise RequestError(f"{what}: empty image")
    try:
        pixels = decode_native(data, max_pixels=max_pixels)
        return module.preprocess(pixels), (int(pixels.shape[0]), int(pixels.shape[1]))
    except ImageError as exc:
        message = str(exc).removeprefix("<bytes>: ")
        raise RequestError(f"{what}: {message}") from None
    except MemoryError:
        raise RequestError(f"{what}: not enough memory to decode this image", status=503) from None


def image_shape(module: Module) -> list[int]:
    """``[height, width, 3]``: one input image of ``module``."""
    return [*module.expected_image_size, 3]


def float_images(
    data: Any, module: Module, what: str, *, shape: Sequence[int] | None = None, dtype: Any = np.float32
) -> np.ndarray:
    """Numbers (nested lists, a flat list with ``shape``, or an array) → checked float32 ``[B, H, W, 3]`` at
    the module's size.

    Values must be finite and in [0, 1], the range TF-Hub's image signatures take: 0-255 pixels are
    refused with a hint rather than silently giving nonsense.
    """
    try:
        array = np.asarray(data, dtype=dtype)
    except (ValueError, TypeError, OverflowError):
        raise RequestError(f"{what}: expected numbers in a rectangular nested list") from None
    if shape is not None:
        if array.size != int(np.prod(shape)):
            raise RequestError(f"{what}: {array.size} values do not fill the declared shape {list(shape)}")
        array = array.reshape(shape)
    given = list(array.shape)
    if array.ndim == 3:
        array = array[None]
    expected = image_shape(module)
    if array.ndim != 4 or list(array.shape[1:]) != expected:
        raise RequestError(f"{what}: expected images of shape {expected} (height, width, RGB), got {given}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise RequestError(f"{what}: values must be finite numbers")
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        hint = " (0-255 pixels? divide by 255)" if array.max() > 1.0 else ""
        raise RequestError(f"{what}: values must be in [0, 1], got [{array.min():g}, {array.max():g}]{hint}")
    return array
