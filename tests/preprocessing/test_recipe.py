"""``Preprocessing``: the recipe a module records and everything that feeds it applies. TF-Slim's recipe is
``load_image`` at a size (itself checked against TensorFlow in test_preprocessing); timm's is checked here
against Pillow and torchvision's documented steps, written out independently."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

import irv2
from irv2.hub import sources
from irv2.preprocessing import Preprocessing


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory, photo_arrays) -> str:
    path = tmp_path_factory.mktemp("recipe") / "astronaut.jpg"
    Image.fromarray(photo_arrays["astronaut"][:400, :300]).save(path, quality=95)  # portrait: 300 wide, 400 high
    return str(path)


def test_the_default_is_tf_slim_evaluation_at_299(photo_file):
    recipe = Preprocessing()
    assert recipe.image_size == (299, 299) and recipe.to_dict() == {
        "recipe": "tf_slim_eval",
        "central_fraction": 0.875,
        "resize": "bilinear_tf_legacy",
        "image_size": [299, 299],
        "input_range": [0.0, 1.0],
    }
    np.testing.assert_array_equal(recipe(photo_file), irv2.load_image(photo_file))
    np.testing.assert_array_equal(recipe.with_size(160)(photo_file), irv2.load_image(photo_file, size=160))
    np.testing.assert_array_equal(recipe(photo_file, draft=True), irv2.load_image(photo_file, draft=True))


def test_records_round_trip_and_old_records_take_the_size_given():
    recipes = (
        Preprocessing(),
        Preprocessing((160, 192), central_fraction=None),
        Preprocessing(recipe="timm", crop_pct=0.9),
    )
    for recipe in recipes:
        assert Preprocessing.from_dict(recipe.to_dict()) == recipe
    old = {"recipe": "tf_slim_eval", "central_fraction": 0.875, "resize": "bilinear_tf_legacy"}
    assert Preprocessing.from_dict(old, image_size=[224, 224]).image_size == (224, 224)
    assert Preprocessing.from_dict(None).image_size == (299, 299)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"recipe": "vgg"}, "unknown preprocessing recipe 'vgg'"),
        ({"resize": "nearest"}, "bilinear_tf_legacy, not nearest"),
        ({"recipe": "timm", "crop_pct": 0.9, "mean": [0.485, 0.456, 0.406]}, "takes \\[-1, 1\\]"),
        ({"recipe": "timm"}, "needs crop_pct"),
        ({"central_fraction": 1.5}, "central_fraction must be in"),
        ({"image_size": [0, 3]}, "must be positive"),
    ],
)
def test_recipes_irv2_cannot_apply_are_refused(record, message):
    with pytest.raises(ValueError, match=message):
        Preprocessing.from_dict(record)


def test_every_registry_record_has_a_recipe_irv2_applies():
    for source in sources():
        assert Preprocessing.from_dict(source.preprocessing).image_size == (299, 299), source.name


def test_timm_recipe_is_bicubic_shorter_side_then_centre_crop(photo_file):
    recipe = Preprocessing.from_dict(next(s for s in sources() if s.name == "timm-tf-in1k").preprocessing)
    assert recipe.recipe == "timm" and recipe.crop_pct == pytest.approx(0.8975)
    with Image.open(photo_file) as image:
        # torchvision: Resize(floor(299 / 0.8975) = 333) on the shorter side (300 wide -> 333 x 444), bicubic;
        # CenterCrop(299) at round((444 - 299) / 2) = 72 from the top, round((333 - 299) / 2) = 17 from the left.
        assert math.floor(299 / 0.8975) == 333
        resized = image.convert("RGB").resize((333, 444), Image.BICUBIC)
        expected = np.asarray(resized, np.float32)[72 : 72 + 299, 17 : 17 + 299] / 255.0
    got = recipe(photo_file)
    assert got.shape == (299, 299, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("recipe", [Preprocessing(), Preprocessing(recipe="timm", crop_pct=0.8975)])
def test_every_kind_of_image_gives_the_same_input(recipe, photo_file):
    expected = recipe(photo_file)
    with open(photo_file, "rb") as f:
        data = f.read()
    pixels = np.asarray(Image.open(photo_file).convert("RGB"))
    for source in (data, io.BytesIO(data), Image.open(photo_file), pixels, torch.from_numpy(pixels.copy())):
        np.testing.assert_array_equal(recipe(source), expected)
    gray = recipe(pixels[..., 0])
    assert gray.shape == (*recipe.image_size, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    with pytest.raises(TypeError, match="a path, the file's bytes"):
        recipe(3.5)
