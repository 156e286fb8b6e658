"""``Preprocessing``: how an image becomes a module's input, recorded with the weights.

Like torchvision's ``weights.transforms()``, the recipe travels with the weights (registry records, the
``irv2.json`` of saved and fine-tuned modules) and everything that feeds a module uses it: ``module.preprocess``,
``irv2 classify`` and ``features``, batch jobs, the server and the benchmarks. A module fine-tuned at 160 px
is therefore fed 160 px images everywhere, without anyone passing the size again.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from .decode import DEFAULT_MAX_PIXELS, decode_native, pil_pixels
from .eval import load_image, preprocess_for_eval

TF_SLIM = "tf_slim_eval"
TIMM = "timm"
RECIPES = (TF_SLIM, TIMM)
DEFAULT_IMAGE_SIZE = (299, 299)


@dataclass(frozen=True)
class Preprocessing:
    """How the weights were evaluated, at a size: decode (upright by EXIF), crop and resize, values in [0, 1].

    Two recipes:

    * ``tf_slim_eval`` (the TF-Slim, TF-Hub and Keras weights): ``tf.image.central_crop`` keeping
      ``central_fraction`` of each side, then TF's legacy bilinear resize (``resize_bilinear_tf_legacy``),
      exact to TensorFlow;
    * ``timm`` (timm's ``inception_resnet_v2.tf_in1k``): Pillow's bicubic resize of the shorter side to
      ``image_size / crop_pct``, then a centred crop to ``image_size``, as timm's evaluation transform does.

    Both end in [0, 1]; the module maps that to the network's [-1, 1] itself (timm's mean and std of 0.5).

    Attributes:
        image_size: ``(height, width)`` of the module's input (299 x 299 for the TF-Hub weights).
        recipe: ``tf_slim_eval`` or ``timm``.
        central_fraction: ``tf_slim_eval``'s central crop (0.875), or None for no crop.
        crop_pct: ``timm``'s share of the resized image kept by the crop (0.8975 for these weights).
    """

    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
    central_fraction: float | None = 0.875
    recipe: str = TF_SLIM
    crop_pct: float | None = None

    def __post_init__(self) -> None:
        size = tuple(int(side) for side in _pair(self.image_size))
        if min(size) < 1:
            raise ValueError(f"image_size must be positive, got {list(size)}")
        object.__setattr__(self, "image_size", size)
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown preprocessing recipe {self.recipe!r}; irv2 knows {', '.join(RECIPES)}")
        if self.recipe == TIMM:
            object.__setattr__(self, "central_fraction", None)
            if self.crop_pct is None or not 0.0 < self.crop_pct <= 1.0:
                raise ValueError(f"the timm recipe needs crop_pct in (0, 1], got {self.crop_pct}")
        elif self.central_fraction is not None and not 0.0 < self.central_fraction <= 1.0:
            raise ValueError(f"central_fraction must be in (0, 1] or None, got {self.central_fraction}")

    def __call__(self, image: Any, *, draft: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """``image`` as the module's input: float32 ``[H, W, 3]`` in [0, 1] at :attr:`image_size`.

        Args:
            image: a path, the encoded file (``bytes``, a binary file object), a Pillow image, or pixels as a
                numpy array or CPU tensor ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` (uint8, uint16, or float
                already in [0, 1]). Files and Pillow images are turned upright by their EXIF orientation.
            draft: decode large JPEGs at a reduced scale first (see :func:`irv2.load_image`): much faster on
                big photos, a slightly smoother result; False reproduces TF-Slim bit for bit.
            max_pixels: refuse files with more pixels than this (a decompression-bomb guard; None: no limit).

        Raises:
            ImageError: a file that cannot be decoded; ValueError or TypeError: an array of the wrong shape
            or type, naming what it got.
        """
        is_file = isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(image, "read")
        if self.recipe == TIMM:
            pixels = decode_native(image, max_pixels=max_pixels) if is_file else _pixels(image)
            return _timm_eval(pixels, self.image_size, self.crop_pct)
        if is_file:
            return load_image(image, self.image_size, self.central_fraction, max_pixels=max_pixels, draft=draft)
        out = preprocess_for_eval(_pixels(image), self.image_size, self.central_fraction)
        return np.repeat(out, 3, axis=-1) if out.shape[-1] == 1 else out

    def with_size(self, image_size: int | Sequence[int]) -> Preprocessing:
        """The same recipe at another size (what fine-tuning at ``--image-size`` records)."""
        return replace(self, image_size=_pair(image_size))

    def to_dict(self) -> dict[str, Any]:
        """The recipe as JSON data (``irv2.json``, export metadata, ``irv2 info``)."""
        if self.recipe == TIMM:
            steps = {"crop_pct": self.crop_pct, "interpolation": "bicubic"}
        else:
            steps = {"central_fraction": self.central_fraction, "resize": "bilinear_tf_legacy"}
        return {"recipe": self.recipe, **steps, "image_size": list(self.image_size), "input_range": [0.0, 1.0]}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any] | None, *, image_size: Any = None) -> Preprocessing:
        """The recipe a record describes (``to_dict``'s form, or a registry record's; records without
        ``image_size`` take it from ``image_size``, else 299 x 299). ValueError for what irv2 cannot apply."""
        record = dict(record or {})
        size = record.get("image_size", image_size)
        size = _pair(size) if size is not None else DEFAULT_IMAGE_SIZE
        recipe = record.get("recipe", TF_SLIM)
        if recipe == TIMM:
            if record.get("interpolation", "bicubic") != "bicubic":
                raise ValueError(f"the timm recipe is applied with bicubic resizing, not {record['interpolation']}")
            for key in ("mean", "std"):  # what the module's own 2x - 1 amounts to
                if list(record.get(key, [0.5] * 3)) != [0.5] * 3:
                    raise ValueError(f"the network takes [-1, 1] (timm {key} 0.5), not {key} {record[key]}")
            return cls(image_size=size, recipe=TIMM, crop_pct=record.get("crop_pct"))
        if record.get("resize", "bilinear_tf_legacy") != "bilinear_tf_legacy":
            raise ValueError(f"the tf_slim_eval recipe resizes with bilinear_tf_legacy, not {record['resize']}")
        return cls(image_size=size, central_fraction=record.get("central_fraction", 0.875), recipe=recipe)


def _pair(size: Any) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    values = tuple(size)
    if len(values) != 2:
        raise ValueError(f"image_size is one side or (height, width), got {list(values)}")
    return int(values[0]), int(values[1])


def _pixels(image: Any) -> np.ndarray:
    """A Pillow image, numpy array or tensor as ``[H, W, C]`` pixels."""
    if isinstance(image, Image.Image):
        return pil_pixels(image)
    if type(image).__module__.startswith("torch"):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(
            "preprocess takes a path, the file's bytes, a file object, a PIL image or an array [H, W, 3], "
            f"got {type(image).__name__}"
        )
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        hint = " (channels first? pass [H, W, 3])" if image.ndim == 3 and image.shape[0] in (1, 3) else ""
        raise ValueError(f"expected one image [H, W, 3] (or [H, W] grayscale), got shape {list(image.shape)}{hint}")
    return image


def _timm_eval(pixels: np.ndarray, size: tuple[int, int], crop_pct: float) -> np.ndarray:
    """timm's evaluation transform on decoded pixels: Pillow bicubic resize (the shorter side to
    ``floor(side / crop_pct)`` for a square size, each side so for another), a centred crop, then [0, 1]."""
    if pixels.dtype == np.uint16:
        pixels = np.round(pixels / 257.0).astype(np.uint8)  # Pillow's 8-bit view of 16-bit samples
    elif pixels.dtype != np.uint8:
        pixels = np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels))
    image = image.convert("RGB")
    height, width = size
    if height == width:
        side = math.floor(height / crop_pct)
        # torchvision's Resize(int): the shorter side becomes `side`, the longer keeps the aspect, truncated.
        if image.width <= image.height:
            new = (side, int(side * image.height / image.width))
        else:
            new = (int(side * image.width / image.height), side)
    else:
        new = (math.floor(width / crop_pct), math.floor(height / crop_pct))
    image = image.resize(new, Image.BICUBIC)
    # torchvision's CenterCrop: the offset rounded, as int(round((side - crop) / 2)).
    top, left = round((image.height - height) / 2.0), round((image.width - width) / 2.0)
    crop = np.asarray(image.crop((left, top, left + width, top + height)), dtype=np.float32)
    return crop * np.float32(1.0 / 255.0)
