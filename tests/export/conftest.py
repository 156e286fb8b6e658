"""Fixtures for the export tests: random-weight modules (1001, 5 and 0 classes) and real photos.

Exporting the full network takes tens of seconds per format on a small CPU, so each artefact is exported
once per session by a fixture in the test file that uses it (or in tests/shared_exports.py, for those the
docs' recipes read too), and every test of that format reads it.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from export_support import FLOWERS

import irv2
from irv2.api.module import FEATURE_VECTOR, Module, ModuleInfo
from irv2.preprocessing import preprocess_for_eval


@pytest.fixture(scope="session")
def images(photo_arrays) -> np.ndarray:
    """Five photos, TF-Slim eval preprocessing: ``[5, 299, 299, 3]`` float32 in [0, 1]."""
    return np.stack([preprocess_for_eval(image) for image in photo_arrays.values()])


@pytest.fixture(scope="session")
def odd_images(photo_arrays) -> np.ndarray:
    """Two photos at a non-square, non-299 size: ``[2, 263, 320, 3]``."""
    return np.stack([preprocess_for_eval(image, size=(263, 320)) for image in list(photo_arrays.values())[:2]])


@pytest.fixture(scope="session")
def flowers_module(imagenet_module) -> Module:
    """The same network with a fresh 5-way head, as fine-tuning leaves it."""
    model = copy.deepcopy(imagenet_module.model)
    torch.manual_seed(5)
    model.reset_classifier(5)
    with torch.no_grad():
        model.classif.bias.copy_(torch.linspace(-1, 1, 5))  # a head whose bias matters too
    return Module(model.eval(), ModuleInfo(5, FLOWERS, provenance={"source": "finetune test"}))


@pytest.fixture(scope="session")
def features_module(imagenet_module) -> Module:
    """The same network without a classifier, as TF-Hub's feature_vector/1."""
    model = copy.deepcopy(imagenet_module.model)
    model.reset_classifier(0)
    return Module(model.eval(), ModuleInfo(0, None, default_signature=FEATURE_VECTOR))


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory, imagenet_module) -> Path:
    """``imagenet_module`` saved as an irv2 module folder, for the command line."""
    path = tmp_path_factory.mktemp("weights") / "random-irv2"
    irv2.save(imagenet_module, path)
    return path
