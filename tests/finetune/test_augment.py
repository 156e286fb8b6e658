"""Inception-style training augmentation and the eval transform (fast)."""

from __future__ import annotations

import numpy as np
import torch
from shapes import write_dataset

import irv2
from irv2.finetune.augment import (
    ASPECT_RANGE,
    MIN_COVERED,
    distort_color,
    eval_transform,
    random_crop_box,
    train_transform,
)
from irv2.finetune.data import Sample
from irv2.finetune.datasets import ImageDataset
from irv2.preprocessing.decode import decode_native


def test_crop_boxes_follow_tf_slims_ranges():
    rng = np.random.default_rng(0)
    height, width = 150, 150
    areas, aspects = [], []
    for _ in range(2000):
        top, left, h, w = random_crop_box(height, width, rng)
        assert top >= 0 and top + h <= height and left >= 0 and left + w <= width
        areas.append(h * w / (height * width))
        aspects.append(w / h)
    areas, aspects = np.array(areas), np.array(aspects)
    assert areas.min() >= MIN_COVERED and areas.max() <= 1.0
    # Rounding to whole pixels moves the ratio a little beyond the sampled range.
    assert aspects.min() > ASPECT_RANGE[0] - 0.05 and aspects.max() < ASPECT_RANGE[1] + 0.05
    assert np.mean(areas < 0.3) > 0.1 and np.mean(areas > 0.7) > 0.05  # small and large crops both occur


def test_whole_image_when_no_crop_fits():
    # A 1-pixel-high image cannot hold a 3/4..4/3 crop covering 10 %: TF falls back to the whole image.
    assert random_crop_box(1, 400, np.random.default_rng(0)) == (0, 0, 1, 400)


def test_train_transform_shape_range_and_flip():
    rng = np.random.default_rng(0)
    pixels = np.zeros((60, 80, 3), np.uint8)
    pixels[:, :40] = 255  # left half white
    outs = [train_transform(pixels, 32, np.random.default_rng(i), color_jitter=False) for i in range(40)]
    assert all(o.shape == (32, 32, 3) and o.dtype == np.float32 and o.min() >= 0 and o.max() <= 1 for o in outs)
    sides = [(o[:, :16].mean(), o[:, 16:].mean()) for o in outs]
    left_brighter = [left > right for left, right in sides if abs(left - right) > 0.2]  # crops showing both halves
    assert 0 < sum(left_brighter) < len(left_brighter)  # flipped sometimes, not always
    grey = train_transform(np.full((50, 50, 1), 128, np.uint8), 16, rng, color_jitter=True)
    assert grey.shape == (16, 16, 3)


def test_colour_distortion_stays_in_range_and_changes_colours():
    rng = np.random.default_rng(1)
    image = np.random.default_rng(2).random((8, 8, 3), dtype=np.float32)
    out = distort_color(image, rng)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    assert not np.allclose(out, image)
    grey = np.full((4, 4, 3), 0.5, np.float32)  # saturation leaves greys alone; only brightness moves them
    shifted = distort_color(grey, np.random.default_rng(3))
    assert np.allclose(shifted, shifted[0, 0, 0], atol=1e-6)


def test_eval_transform_is_irv2s_eval_preprocessing(tmp_path):
    path = write_dataset(tmp_path, 1, classes=("disc",))["disc"][0]
    expected = irv2.load_image(path, size=100)
    np.testing.assert_array_equal(eval_transform(decode_native(path), 100), expected)
    image, label = ImageDataset([Sample(str(path), 3)], 100, train=False)[0]
    assert label == 3
    torch.testing.assert_close(image, torch.from_numpy(expected).permute(2, 0, 1))


def test_augmentation_depends_on_seed_epoch_and_index_only(tmp_path):
    paths = write_dataset(tmp_path, 2, classes=("stripes",))["stripes"]
    samples = [Sample(str(p), 0) for p in paths]
    a = ImageDataset(samples, 64, train=True, seed=5)
    b = ImageDataset(samples, 64, train=True, seed=5)
    torch.testing.assert_close(a[1][0], b[1][0])
    a.set_epoch(1)
    assert not torch.equal(a[1][0], b[1][0])
    b.set_epoch(1)
    torch.testing.assert_close(a[1][0], b[1][0])
