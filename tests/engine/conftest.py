"""What the engine tests share: random weights fitted to real photos, the photos, and the plain network's
float32 outputs on them (each test module gets its own copies, so none sees another's changes)."""

from __future__ import annotations

import numpy as np
import pytest

import irv2
from irv2.preprocessing import preprocess_for_eval
from random_module import random_module


@pytest.fixture(scope="module")
def plain(photo_arrays):
    return random_module(photo_arrays)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory, plain):
    return irv2.save(plain, tmp_path_factory.mktemp("engine") / "random-irv2")


@pytest.fixture(scope="module")
def batch(photo_arrays) -> np.ndarray:
    return np.stack([preprocess_for_eval(image) for image in photo_arrays.values()])


@pytest.fixture(scope="module")
def reference(weights_dir, batch):
    """float32 logits and features of the plain network."""
    module = irv2.load(weights_dir, engine="plain")
    return module(batch), module(batch, signature=irv2.FEATURE_VECTOR)


@pytest.fixture(scope="module")
def engine_home(tmp_path_factory):
    """A fresh ``IRV2_HOME`` for the module, where engines cache what they convert (use it autouse)."""
    home = tmp_path_factory.mktemp("irv2-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IRV2_HOME", str(home))
        yield home
