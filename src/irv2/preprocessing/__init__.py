"""Image decoding and TF-Slim evaluation preprocessing, exact to TensorFlow, without TensorFlow.

``load_image(path)`` gives the float32 ``[299, 299, 3]`` RGB input in [0, 1] that the TF-Hub module
and irv2's module expect: decode (:func:`decode_image`), :func:`central_crop` (0.875) and TF's
legacy bilinear resize (:func:`resize_bilinear_tf_legacy`). :class:`Preprocessing` is that recipe at a
size, as a module records it (``module.preprocess``). Runtime dependencies: numpy, Pillow.
"""

from .decode import DEFAULT_MAX_PIXELS, ImageSource, decode_image, pil_pixels, to_float01
from .eval import load_image, preprocess_for_eval
from .recipe import Preprocessing
from .resize import central_crop, resize_bilinear_tf_legacy

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageSource",
    "Preprocessing",
    "central_crop",
    "decode_image",
    "load_image",
    "pil_pixels",
    "preprocess_for_eval",
    "resize_bilinear_tf_legacy",
    "to_float01",
]
