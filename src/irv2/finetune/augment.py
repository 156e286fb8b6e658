"""Training augmentation in the spirit of TF-Slim's ``inception_preprocessing.preprocess_for_train``.

Choices (numpy only; every random draw comes from the generator passed in, so a sample's augmentation is
a function of the seed, the epoch and its index, whatever the number of workers or processes):

* **Random crop**: TF-Slim's ``distorted_bounding_box_crop`` parameters with the whole image as the box:
  area 5-100 % of the image, aspect ratio 3/4 to 4/3, the crop covering at least 10 % of the image
  (``min_object_covered=0.1``), 100 attempts, then the whole image. Area and aspect ratio are drawn
  uniformly (as torchvision's ``RandomResizedCrop`` draws them); TF's kernel draws the height instead,
  which favours small crops slightly less. The crop is resized with TF's legacy bilinear resize, the one
  irv2's eval preprocessing uses (TF-Slim picked one of four resize methods at random).
* **Horizontal flip** with probability 1/2.
* **Colour** (optional): TF-Slim's ``distort_color`` in fast mode: brightness +-32/255 and saturation
  x0.5-1.5 in random order, clipped to [0, 1]. Saturation is a blend with the image's grey (luma) copy,
  which equals TF's HSV scaling for greys and is close to it elsewhere.

Output, like irv2's eval preprocessing: float32 ``[size, size, 3]`` in [0, 1].
"""

from __future__ import annotations

import math

import numpy as np

from ..preprocessing import preprocess_for_eval

AREA_RANGE = (0.05, 1.0)
ASPECT_RANGE = (0.75, 1.33)
MIN_COVERED = 0.1
MAX_ATTEMPTS = 100
BRIGHTNESS_DELTA = 32.0 / 255.0
SATURATION_RANGE = (0.5, 1.5)
# ITU-R BT.601 luma, the weights tf.image.rgb_to_grayscale uses.
_LUMA = np.array([0.2989, 0.587, 0.114], np.float32)


def random_crop_box(height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``(top, left, crop_height, crop_width)`` of an Inception-style random crop (see the module notes)."""
    total = height * width
    for _ in range(MAX_ATTEMPTS):
        area = rng.uniform(*AREA_RANGE) * total
        aspect = rng.uniform(*ASPECT_RANGE)
        crop_w = round(math.sqrt(area * aspect))
        crop_h = round(math.sqrt(area / aspect))
        if 0 < crop_h <= height and 0 < crop_w <= width and crop_h * crop_w >= MIN_COVERED * total:
            top = int(rng.integers(0, height - crop_h + 1))
            left = int(rng.integers(0, width - crop_w + 1))
            return top, left, crop_h, crop_w
    return 0, 0, height, width


def train_transform(pixels: np.ndarray, size: int, rng: np.random.Generator, *, color_jitter: bool) -> np.ndarray:
    """Random crop, resize to ``size``, random flip and (optionally) colour distortion.

    Args:
        pixels: a decoded image ``[H, W, C]`` as :func:`irv2.preprocessing.decode.decode_native` gives it
            (uint8, uint16 or float in [0, 1]; 1 or 3 channels).
        size: output side in pixels.
        rng: the generator every random choice is drawn from.
        color_jitter: apply the colour distortion.

    Returns:
        float32 ``[size, size, 3]`` RGB in [0, 1].
    """
    top, left, crop_h, crop_w = random_crop_box(pixels.shape[0], pixels.shape[1], rng)
    crop = pixels[top : top + crop_h, left : left + crop_w]
    image = preprocess_for_eval(crop, size, central_fraction=None)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if color_jitter:
        image = distort_color(image, rng)
    return np.ascontiguousarray(image, dtype=np.float32)


def distort_color(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """TF-Slim's fast-mode colour distortion of an RGB image in [0, 1] (see the module notes)."""
    delta = rng.uniform(-BRIGHTNESS_DELTA, BRIGHTNESS_DELTA)
    factor = rng.uniform(*SATURATION_RANGE)
    brightness_first = rng.random() < 0.5
    if brightness_first:
        image = image + delta
    grey = image @ _LUMA
    image = grey[..., None] + factor * (image - grey[..., None])
    if not brightness_first:
        image = image + delta
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def eval_transform(pixels: np.ndarray, size: int) -> np.ndarray:
    """irv2's TF-Slim eval preprocessing at ``size``: central crop 0.875, TF's legacy bilinear resize."""
    image = preprocess_for_eval(pixels, size)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image, dtype=np.float32)
