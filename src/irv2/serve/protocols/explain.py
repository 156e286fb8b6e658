"""KServe's ``:explain`` verb: where the network looks, as Grad-CAM maps (what the web page's heatmap shows).

``POST /v1/models/NAME[/versions/1]:explain`` takes the ``:predict`` row format, ``{"instances": [...]}``
(each a ``{"b64": "<image file>"}`` or a ``[H, W, 3]`` nested list of floats in [0, 1] at the module's size),
plus an optional ``"target"``: a class index or a label to explain in every image; by default each image's
top class. It answers ``{"explanations": [...]}``, one object per instance:

* ``class``, ``label``, ``score``: the class explained, its label (null without labels) and its softmax
  probability;
* ``map``: ``irv2.explain``'s Grad-CAM map of ``Conv2d_7b_1x1``, ``h`` rows of ``w`` floats in [0, 1]
  (8 x 8 at 299 px), divided by its maximum; row 0 is the top of the image;
* ``image_size``: ``[H, W]``, the module's input the map covers;
* ``crop``: that input's place in the uploaded photo (upright), as fractions of its height and width
  (``top``, ``left``, ``height``, ``width``): the preprocessing keeps a central crop (TF-Slim's 0.875 of each
  side), so a heatmap drawn over the photo belongs over this box. The whole image for float instances.

The explanation runs on an inference thread, alone (it is not batched), under the server's limits and
deadline like any inference request.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...api import Module
from ...errors import OptionError, PayloadTooLarge, RequestError
from ...preprocessing import Preprocessing, central_crop
from ...preprocessing.recipe import TIMM
from ..config import ServeConfig
from ..decode import b64decode, decode_image_file_sized, float_images, image_shape
from . import Prepared, expect_object, json_reply, load_json

_FIELDS = ("instances", "target")
_WHOLE = {"top": 0.0, "left": 0.0, "height": 1.0, "width": 1.0}


def parse_explain(body: bytes, module: Module, config: ServeConfig) -> Prepared:
    """An ``:explain`` body → a :class:`Prepared` request whose task is Grad-CAM (RequestError if malformed)."""
    document = expect_object(load_json(body), "the request")
    unknown = sorted(set(document) - set(_FIELDS))
    if unknown:
        raise RequestError(f"unknown field(s) {unknown}; an explain request takes {list(_FIELDS)}")
    if not module.num_classes:
        raise RequestError("this model is a feature vector: it has no classifier whose classes could be explained")
    rows = document.get("instances")
    if not isinstance(rows, list) or not rows:
        raise RequestError('"instances" must be a non-empty list of images')
    if len(rows) > config.max_instances:
        raise PayloadTooLarge(f"{len(rows)} instances in one request, more than --max-instances {config.max_instances}")
    target = _target(document.get("target"), module)
    crops: list[dict[str, float]] = []

    def decode() -> np.ndarray:
        images = []
        for index, row in enumerate(rows):
            image, crop = _instance(row, index, module, config)
            images.append(image)
            crops.append(crop)
        return np.concatenate(images)

    def task(images: np.ndarray) -> dict[str, Any]:
        from ...explain import gradcam  # Grad-CAM needs the PyTorch network: imported by this route alone

        found = gradcam(module, images, target)
        return {
            "explanations": [
                {
                    "class": found.targets[i],
                    "label": found.labels[i],
                    "score": found.scores[i],
                    "map": np.asarray(found.maps[i], dtype=np.float32).tolist(),
                    "image_size": list(images.shape[1:3]),
                    "crop": crops[i],
                }
                for i in range(len(images))
            ]
        }

    return Prepared(len(rows), decode, logits=False, features=False, reply=json_reply, task=task)


def crop_box(preprocessing: Preprocessing, height: int, width: int) -> dict[str, float]:
    """Where the module's input lies in a ``height`` x ``width`` photo, as fractions of its sides:
    ``{"top", "left", "height", "width"}``."""
    if preprocessing.recipe == TIMM:
        # timm's evaluation transform (preprocessing.recipe._timm_eval): the photo is resized so its shorter
        # side is floor(size / crop_pct), then a centred crop of the module's size is cut from it.
        out_h, out_w = preprocessing.image_size
        if out_h == out_w:
            side = math.floor(out_h / preprocessing.crop_pct)
            scaled = (int(side * height / width), side) if width <= height else (side, int(side * width / height))
        else:
            scaled = (math.floor(out_h / preprocessing.crop_pct), math.floor(out_w / preprocessing.crop_pct))
        top, left = round((scaled[0] - out_h) / 2.0), round((scaled[1] - out_w) / 2.0)
        return {
            "top": top / scaled[0],
            "left": left / scaled[1],
            "height": out_h / scaled[0],
            "width": out_w / scaled[1],
        }
    if preprocessing.central_fraction is None:
        return dict(_WHOLE)
    # TF's central_crop itself, on a zero-byte stand-in of the photo's shape: its truncated, centred margins.
    kept = central_crop(np.broadcast_to(np.uint8(0), (height, width, 1)), preprocessing.central_fraction)
    kept_h, kept_w = kept.shape[:2]
    return {
        "top": (height - kept_h) // 2 / height,
        "left": (width - kept_w) // 2 / width,
        "height": kept_h / height,
        "width": kept_w / width,
    }


def _target(value: Any, module: Module) -> int | None:
    from ...explain.targets import class_index

    """The class every image is explained for: None (each its top class), an index or a label."""
    if value is None:
        return None
    try:
        return class_index(module, value)
    except OptionError as exc:
        raise RequestError(str(exc)) from None


def _instance(row: Any, index: int, module: Module, config: ServeConfig) -> tuple[np.ndarray, dict[str, float]]:
    """One instance → ``[1, H, W, 3]`` and its crop box in the photo."""
    what = f"instance {index}"
    if isinstance(row, dict):
        if set(row) != {"b64"}:
            raise RequestError(f'{what}: expected {{"b64": "<base64 image file>"}}')
        data = b64decode(row["b64"], what)
        image, (height, width) = decode_image_file_sized(data, module, config.max_image_pixels, what)
        return image[None], crop_box(module.preprocessing, height, width)
    if isinstance(row, list):
        images = float_images(row, module, what)
        if len(images) != 1:
            raise RequestError(f"{what}: expected one image {image_shape(module)}, got a batch of {len(images)}")
        return images, dict(_WHOLE)
    raise RequestError(f'{what}: expected a {image_shape(module)} list of floats in [0, 1] or {{"b64": "..."}}')
