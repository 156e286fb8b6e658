"""Decode image files to RGB arrays holding what TF's ``decode_*`` + ``convert_image_dtype`` give.

Formats: whatever Pillow reads, in practice JPEG, PNG, GIF (first frame), BMP, WebP and TIFF.
Choices, where TensorFlow and photo viewers disagree or TF has no answer:

* **EXIF orientation is applied** (as ``PIL.ImageOps.exif_transpose`` would), so a phone photo comes
  out upright. TF's decoders ignore EXIF; this is a deliberate difference.
* **Alpha is dropped, not composited**: RGBA and LA keep their colour channels, as TF's
  ``decode_png(channels=3)`` does. Palette images (with or without transparency) become their
  palette colours. Grayscale is replicated to three channels.
* **16-bit precision is kept** for 16-bit grayscale (any format Pillow opens as ``I;16``) and for
  16-bit RGB/RGBA PNG, which scale by 1/65535 as ``tf.io.decode_image(dtype=tf.float32)`` does.
  Other 16-bit colour files (TIFF, grayscale+alpha PNG) are read by Pillow at 8 bits.
  32-bit integer images (mode ``I``) are taken as 16-bit data, clipped to [0, 65535]; float images
  (mode ``F``) are clipped to [0, 1].
* CMYK (including Adobe's inverted CMYK JPEGs) and YCbCr are converted by Pillow.
* **Decompression bombs**: images with more than ``max_pixels`` pixels (default
  :data:`DEFAULT_MAX_PIXELS`, about 179 MP, so a 10000x8000 photo decodes) are refused before
  their pixels are decoded. irv2 never changes ``PIL.Image.MAX_IMAGE_PIXELS``, which is
  process-wide: Pillow's own check still applies on top (it warns above 89.5 MP by default and
  refuses above twice that); raise it yourself to decode larger images.
* Truncated and corrupt files raise :class:`~irv2.errors.ImageError`; they are never padded with
  grey. This relies on Pillow's default ``ImageFile.LOAD_TRUNCATED_IMAGES = False``.
"""

from __future__ import annotations

import io
import os
import struct
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageError

__all__ = ["DEFAULT_MAX_PIXELS", "ImageSource", "decode_image", "to_float01"]

#: A file path, the encoded bytes, or a binary file object.
ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]

#: Default pixel limit: Pillow's default hard limit (2 x 89,478,485), about 13400 x 13400.
DEFAULT_MAX_PIXELS = 178_956_970

# What Pillow raises for unreadable data, depending on the plugin.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error)

# EXIF orientation tag value → the numpy view that turns the stored [H, W, C] pixels upright.
_ORIENTATIONS = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # rotated 180
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # transposed
    6: lambda a: a.transpose(1, 0, 2)[:, ::-1],  # needs 90 degrees clockwise
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],  # transversed
    8: lambda a: a.transpose(1, 0, 2)[::-1],  # needs 90 degrees counter-clockwise
}

_EXIF_ORIENTATION = 0x0112

# Pillow reads 16-bit colour PNG rows with these raw modes but keeps only the high byte. The
# little-endian variant of the same raw mode, applied to big-endian data, yields the low byte.
_PNG16_RAWMODES = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}


def _source_name(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<file object>"


def _read_source(source: ImageSource, name: str) -> str | bytes:
    """A path to open, or the whole encoded file in memory."""
    if isinstance(source, (str, os.PathLike)):
        try:
            if os.path.getsize(source) == 0:
                raise ImageError(f"{name}: empty file")
        except OSError as exc:
            raise ImageError(f"{name}: cannot read file ({exc.strerror or exc})") from exc
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        if isinstance(source, io.TextIOBase):
            raise ImageError(f"{name}: file object must be opened in binary mode")
        try:
            data = source.read()
        except (OSError, ValueError) as exc:
            raise ImageError(f"{name}: cannot read file object ({exc})") from exc
        if not isinstance(data, bytes):
            raise ImageError(f"{name}: file object must be opened in binary mode")
    else:
        raise TypeError(f"expected a path, bytes or a binary file object, got {type(source).__name__}")
    if not data:
        raise ImageError(f"{name}: empty file")
    return data


def _open(data: str | bytes, name: str) -> Image.Image:
    try:
        return Image.open(data if isinstance(data, str) else io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name}: not a recognised image file (expected JPEG, PNG, GIF, BMP, WebP or TIFF)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{name}: refused as a possible decompression bomb by Pillow's process-wide limit "
            f"PIL.Image.MAX_IMAGE_PIXELS ({exc})"
        ) from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(f"{name}: cannot read image header ({exc})") from exc


def _png16_low_byte(data: str | bytes, rawmode: str) -> np.ndarray | None:
    """The low bytes of a 16-bit colour PNG, or None where Pillow cannot give them."""
    with Image.open(data if isinstance(data, str) else io.BytesIO(data)) as im:
        if len(im.tile) != 1 or im.tile[0].args != rawmode:
            return None
        im.tile = [im.tile[0]._replace(args=_PNG16_RAWMODES[rawmode])]
        im.load()
        return np.asarray(im)


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except (*_DECODE_ERRORS, TypeError):
        # Broken EXIF says nothing reliable about orientation; the pixels themselves are fine.
        return 1


def _pixels(im: Image.Image, name: str) -> np.ndarray:
    """Loaded image → ``[H, W, 1 | 3]`` uint8, uint16 or float32 (float already in [0, 1])."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im)
    if mode == "L":
        return np.asarray(im)[..., None]
    if mode == "LA":
        return np.asarray(im)[..., :1]
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)[..., None]
    if mode == "I":
        return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)[..., None]
    if mode == "F":
        return np.clip(np.asarray(im), 0.0, 1.0).astype(np.float32)[..., None]
    if mode == "1":
        return np.asarray(im.convert("L"))[..., None]
    try:
        # RGBA/RGBX drop alpha; P/PA take palette colours; CMYK and YCbCr convert.
        return np.asarray(im.convert("RGB"))
    except ValueError as exc:
        raise ImageError(f"{name}: cannot convert pixel mode {mode!r} to RGB ({exc})") from exc


def decode_native(
    source: ImageSource, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, draft_min_side: int | None = None
) -> np.ndarray:
    """Decode to the file's own sample type, upright: ``[H, W, 1 | 3]`` uint8, uint16 or float32.

    One channel means grayscale (replicate it for RGB). This is what :func:`decode_image` and
    :func:`~irv2.preprocessing.load_image` build on; it lets the caller crop before converting to
    float. The result may be a non-contiguous view (EXIF orientation is applied by striding).

    ``draft_min_side``: let a JPEG decode at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, which
    averages rather than drops pixels) as long as both sides stay at least this long. Other formats
    ignore it.
    """
    name = _source_name(source)
    data = _read_source(source, name)
    with _open(data, name) as im:
        width, height = im.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageError(
                f"{name}: {width}x{height} image has {width * height:,} pixels, more than the "
                f"limit of {max_pixels:,} (a guard against decompression bombs; pass a larger "
                "max_pixels, or None, to decode it)"
            )
        rawmode = None
        if im.format == "PNG" and len(im.tile) == 1 and not getattr(im, "is_animated", False):
            rawmode = im.tile[0].args if im.tile[0].args in _PNG16_RAWMODES else None
        try:
            if draft_min_side is not None and im.format == "JPEG":
                im.draft(im.mode, (draft_min_side, draft_min_side))
            im.load()
            orientation = _orientation(im)
            pixels = _pixels(im, name)
            if rawmode is not None:
                low = _png16_low_byte(data, rawmode)
                if low is not None:
                    pixels = (pixels.astype(np.uint16) << 8) | low[..., :3]
        except ImageError:
            raise
        except _DECODE_ERRORS as exc:
            raise ImageError(f"{name}: image data is truncated or corrupt ({exc})") from exc
    return _upright(pixels, orientation, name)


def pil_pixels(image: Image.Image) -> np.ndarray:
    """A Pillow image (loaded or not) as :func:`decode_native` would decode its file: upright by its EXIF
    orientation, ``[H, W, 1 | 3]`` uint8, uint16 or float32. The same photo gives the same array whether
    irv2 opens the file or the caller already did."""
    name = _source_name(getattr(image, "filename", None) or "<PIL image>")
    try:
        image.load()
        orientation, pixels = _orientation(image), _pixels(image, name)
    except ImageError:
        raise
    except _DECODE_ERRORS as exc:
        raise ImageError(f"{name}: image data is truncated or corrupt ({exc})") from exc
    return _upright(pixels, orientation, name)


def _upright(pixels: np.ndarray, orientation: int, name: str) -> np.ndarray:
    """``pixels`` turned as their EXIF ``orientation`` says (a strided view, no copy); refuses an empty image."""
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ImageError(f"{name}: image has no pixels ({pixels.shape[1]}x{pixels.shape[0]})")
    transform = _ORIENTATIONS.get(orientation)
    return pixels if transform is None else transform(pixels)


def to_float01(pixels: np.ndarray) -> np.ndarray:
    """``tf.image.convert_image_dtype(pixels, tf.float32)``: uint8 → x/255, uint16 → x/65535.

    Like TF, integers are multiplied by the float32 reciprocal of their maximum; floating input is
    assumed to be in [0, 1] already and is only cast to float32. Returns a new C-contiguous array.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint8 or pixels.dtype == np.uint16:
        out = pixels.astype(np.float32, order="C")
        out *= np.float32(1.0 / np.iinfo(pixels.dtype).max)
        return out
    if np.issubdtype(pixels.dtype, np.floating):
        return pixels.astype(np.float32, order="C")
    raise TypeError(f"expected uint8, uint16 or floating-point pixels, got {pixels.dtype}")


def decode_image(source: ImageSource, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to float32 ``[H, W, 3]`` RGB in [0, 1].

    The values are those of TF's ``decode_*`` followed by ``convert_image_dtype(tf.float32)``:
    8-bit samples / 255, 16-bit samples / 65535. See the module docstring for orientation, alpha,
    palette, CMYK and 16-bit handling.

    Args:
        source: a path (``str`` or ``os.PathLike``), the encoded file as ``bytes``, or a binary
            file object (read to the end).
        max_pixels: refuse images with more pixels than this (``None``: only Pillow's own limit).

    Raises:
        ImageError: the file is missing, empty, not an image, truncated, corrupt or too large;
            the message starts with the path (or ``<bytes>``).
    """
    pixels = to_float01(decode_native(source, max_pixels=max_pixels))
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    return pixels
