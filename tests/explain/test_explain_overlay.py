"""The overlay picture: jet as matplotlib draws it, bilinear upsampling as torch does it, the blend, the
caption strip and the atomic PNG."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from irv2.explain import caption, render_overlay, write_overlay_png
from irv2.explain.overlay import STRIP_HEIGHT, blend, jet, upsample


def test_jet_is_matplotlibs():
    values = np.linspace(0.0, 1.0, 256)  # the points of matplotlib's 256-colour table
    np.testing.assert_allclose(jet(values), matplotlib.colormaps["jet"](values)[:, :3], atol=1e-6)
    assert jet(np.zeros((2, 3))).shape == (2, 3, 3)


def test_upsampling_is_torchs_bilinear():
    heatmap = np.random.default_rng(0).random((8, 8), dtype=np.float32)
    for size in [(299, 299), (331, 250), (8, 8)]:
        expected = torch.nn.functional.interpolate(
            torch.from_numpy(heatmap)[None, None], size=size, mode="bilinear", align_corners=False
        )[0, 0].numpy()
        np.testing.assert_allclose(upsample(heatmap, size), expected, atol=1e-6)


def test_blend_leaves_the_photo_where_the_map_is_zero():
    rng = np.random.default_rng(1)
    image = rng.random((64, 48, 3), dtype=np.float32)
    heatmap = np.zeros((8, 8), np.float32)
    heatmap[:4] = 1.0  # the top half
    mixed = blend(image, heatmap, alpha=0.6)
    assert mixed.dtype == np.uint8 and mixed.shape == (64, 48, 3)
    np.testing.assert_array_equal(mixed[40:], np.round(image[40:] * 255).astype(np.uint8))
    dark_red = np.array([0.5, 0.0, 0.0])  # jet(1)
    np.testing.assert_allclose(mixed[:24] / 255, 0.4 * image[:24] + 0.6 * dark_red, atol=1 / 255)


def test_render_overlay_adds_a_caption_strip():
    image = np.full((299, 299, 3), 0.5, np.float32)
    heatmap = torch.linspace(0, 1, 64).reshape(8, 8)  # a tensor, as irv2.explain gives for tensor images
    picture = render_overlay(image, heatmap, caption("tabby", 0.8731))
    assert picture.dtype == np.uint8 and picture.shape == (299 + STRIP_HEIGHT, 299, 3)
    np.testing.assert_array_equal(picture[:299], blend(image, heatmap.numpy()))
    strip = picture[299:]
    assert (strip.max(axis=2) > 200).sum() > 50  # white text ...
    assert (strip.max(axis=2) < 30).mean() > 0.7  # ... on black


def test_a_caption_too_long_for_the_image_keeps_the_score():
    picture = render_overlay(np.zeros((80, 80, 3), np.float32), np.ones((2, 2)), caption("x" * 200, 0.5))
    assert picture.shape == (80 + STRIP_HEIGHT, 80, 3)


def test_render_overlay_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"^image: expected \[H, W, 3\]"):
        render_overlay(np.zeros((10, 10)), np.ones((2, 2)), "x")
    with pytest.raises(ValueError, match=r"^heatmap: expected one map"):
        render_overlay(np.zeros((10, 10, 3)), np.ones((1, 2, 2)), "x")


def test_caption():
    assert caption("tabby", 0.87312) == "tabby 87.3%"
    assert caption(None, 0.4, index=2) == "class 2 40.0%"


def test_write_overlay_png(tmp_path):
    image = np.random.default_rng(2).random((75, 90, 3), dtype=np.float32)
    heatmap = np.eye(3, dtype=np.float32)
    path = tmp_path / "map.png"
    write_overlay_png(path, image, heatmap, "tabby 87.3%")
    with Image.open(path) as written:
        assert written.format == "PNG" and written.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(written), render_overlay(image, heatmap, "tabby 87.3%"))
    assert [p.name for p in tmp_path.iterdir()] == ["map.png"]  # no temporary file left
