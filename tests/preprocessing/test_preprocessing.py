"""irv2.preprocessing against TensorFlow: central crop, legacy bilinear resize and TF-Slim's
``preprocess_for_eval`` on real photos. TensorFlow is the reference here and only here."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import skimage.data
from PIL import Image
from png16_writer import png16

from irv2.preprocessing import (
    central_crop,
    decode_image,
    load_image,
    preprocess_for_eval,
    resize_bilinear_tf_legacy,
    to_float01,
)

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "camera")


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow

    return tensorflow


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """Real photos from scikit-image: uint8, RGB ``[H, W, 3]`` or grayscale ``[H, W]``."""
    return {name: getattr(skimage.data, name)() for name in PHOTOS}


def _encode(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


def _tf_preprocess_for_eval(tf, decoded, size=299, central_fraction=0.875) -> np.ndarray:
    """TF-Slim ``inception_preprocessing.preprocess_for_eval`` without the final [-1, 1] step."""
    image = tf.image.convert_image_dtype(decoded, tf.float32)
    image = tf.image.central_crop(image, central_fraction=central_fraction)
    image = tf.compat.v1.image.resize_bilinear(image[None], [size, size], align_corners=False)
    return image[0].numpy()


# --- load_image on real photos -------------------------------------------------------------------


@pytest.mark.parametrize("name", PHOTOS)
def test_load_image_matches_tf_slim_on_png_photos(tf, photos, name):
    data = _encode(photos[name], "PNG")
    expected = _tf_preprocess_for_eval(tf, tf.io.decode_png(data, channels=3))
    ours = load_image(data)
    assert ours.shape == (299, 299, 3)
    assert ours.dtype == np.float32
    # Same float32 operations in the same order: measured bit-identical; allow a few ulps.
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", PHOTOS)
def test_load_image_matches_tf_slim_on_jpeg_photos(tf, photos, name):
    data = _encode(photos[name], "JPEG", quality=90)
    # Pillow's libjpeg uses the accurate integer IDCT; TF has to be asked for it.
    decoded = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
    expected = _tf_preprocess_for_eval(tf, decoded)
    np.testing.assert_allclose(load_image(data), expected, rtol=0, atol=1e-3)


def test_tf_default_fast_idct_differs_from_ours_by_a_few_levels(tf, photos):
    """TF's default ``decode_jpeg`` uses the fast IDCT, which Pillow cannot select. Documented
    bound: the preprocessed images differ by at most a few 8-bit levels."""
    for name in ("astronaut", "rocket"):
        data = _encode(photos[name], "JPEG", quality=90)
        expected = _tf_preprocess_for_eval(tf, tf.io.decode_jpeg(data, channels=3))
        difference = np.abs(load_image(data) - expected)
        assert difference.max() < 12 / 255
        assert difference.mean() < 1 / 255


@pytest.mark.parametrize("fraction", [0.875, 0.5, 1.0])
@pytest.mark.parametrize("size", [299, 224])
def test_preprocess_for_eval_matches_tf_with_other_settings(tf, photos, fraction, size):
    image = photos["coffee"]
    expected = _tf_preprocess_for_eval(tf, tf.constant(image), size, fraction)
    np.testing.assert_allclose(preprocess_for_eval(image, size, fraction), expected, rtol=0, atol=1e-6)


def test_preprocess_for_eval_on_a_batch_and_on_floats(photos):
    batch = np.stack([photos["astronaut"], photos["immunohistochemistry"]])  # both 512 x 512
    out = preprocess_for_eval(batch)
    assert out.shape == (2, 299, 299, 3)
    for image, result in zip(batch, out, strict=True):
        np.testing.assert_array_equal(result, preprocess_for_eval(image))
        np.testing.assert_array_equal(result, preprocess_for_eval(to_float01(image)))
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_16bit_png_matches_tf_decode_image(tf):
    rng = np.random.default_rng(16)
    for channels in (1, 3, 4):
        for interlace in (False, True):
            data = png16(rng.integers(0, 65536, (31, 45, channels), dtype=np.uint16), interlace)
            expected = tf.io.decode_image(data, channels=3, dtype=tf.float32).numpy()
            np.testing.assert_array_equal(decode_image(data), expected)


def test_16bit_photo_preprocessing_matches_tf(tf, photos):
    wide = photos["astronaut"].astype(np.uint16) * 257 + np.uint16(100)
    data = png16(wide)
    expected = _tf_preprocess_for_eval(tf, tf.io.decode_png(data, channels=3, dtype=tf.uint16))
    np.testing.assert_allclose(load_image(data), expected, rtol=0, atol=1e-6)


# --- the two geometric steps alone ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_size", "out_size"),
    [
        ((333, 500), (299, 299)),  # down, non-square
        ((1000, 750), (299, 299)),  # down a lot
        ((10, 13), (299, 299)),  # up a lot
        ((7, 5), (3, 11)),  # down in one axis, up in the other
        ((437, 311), (123, 457)),
        ((299, 299), (299, 299)),  # identity
        ((1, 1), (4, 4)),
        ((5, 1), (2, 7)),
    ],
)
def test_legacy_resize_matches_tf(tf, in_size, out_size):
    rng = np.random.default_rng(in_size[0] * 1000 + out_size[1])
    images = rng.random((2, *in_size, 3), dtype=np.float32)
    expected = tf.compat.v1.image.resize_bilinear(images, out_size, align_corners=False).numpy()
    ours = resize_bilinear_tf_legacy(images, out_size)
    assert ours.shape == (2, *out_size, 3)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(resize_bilinear_tf_legacy(images[0], out_size), expected[0], atol=1e-6)


def test_legacy_resize_casts_integers_like_tf(tf):
    images = np.random.default_rng(0).integers(0, 256, (1, 37, 53, 3), dtype=np.uint8)
    expected = tf.compat.v1.image.resize_bilinear(images, (29, 71), align_corners=False).numpy()
    np.testing.assert_allclose(resize_bilinear_tf_legacy(images, (29, 71)), expected, atol=1e-4)


def test_legacy_resize_is_not_half_pixel(tf):
    """Guard against the common substitute: ``tf.image.resize`` / PyTorch use half-pixel centres."""
    image = np.random.default_rng(1).random((40, 40, 3), dtype=np.float32)
    modern = tf.image.resize(image, (299, 299), method="bilinear").numpy()
    assert np.abs(resize_bilinear_tf_legacy(image, 299) - modern).max() > 0.05


@pytest.mark.parametrize("fraction", [0.875, 0.5, 0.33, 0.9, 0.999, 1.0])
@pytest.mark.parametrize("shape", [(299, 299), (300, 451), (427, 640), (7, 9), (1, 2), (512, 333)])
def test_central_crop_matches_tf(tf, shape, fraction):
    image = np.arange(np.prod(shape) * 2, dtype=np.float32).reshape(*shape, 2)
    expected = tf.image.central_crop(image, central_fraction=fraction).numpy()
    ours = central_crop(image, fraction)
    assert ours.shape == expected.shape
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(central_crop(image[None], fraction)[0], expected)


def test_central_crop_is_a_view():
    image = np.zeros((100, 80, 3), np.uint8)
    assert np.shares_memory(central_crop(image), image)


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_central_crop_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="central_fraction"):
        central_crop(np.zeros((10, 10, 3)), fraction)


def test_bad_shapes_and_sizes_are_refused():
    with pytest.raises(ValueError, match=r"\[H, W, C\]"):
        resize_bilinear_tf_legacy(np.zeros((10, 10)), 5)
    with pytest.raises(ValueError, match="positive"):
        resize_bilinear_tf_legacy(np.zeros((10, 10, 3)), (0, 5))
    with pytest.raises(TypeError, match="uint8, uint16 or floating"):
        preprocess_for_eval(np.zeros((10, 10, 3), np.int64))
