"""Fixtures for the Grad-CAM tests: random-weight modules (fast), the photos as those modules see them, and
image files for the command line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import irv2
from irv2.api.module import Module, ModuleInfo
from irv2.model import InceptionResNetV2

PHOTO_NAMES = ("chelsea", "coffee")


@pytest.fixture(scope="session")
def imagenet_module(weights_dir) -> Module:
    """A random-weight 1001-class module with ImageNet's labels (``weights_dir``), shared: tests that change
    it must put it back."""
    return irv2.load(weights_dir)


@pytest.fixture(scope="session")
def feature_module() -> Module:
    """A feature-vector module: no classifier, so nothing to explain."""
    return Module(InceptionResNetV2(num_classes=0), ModuleInfo(0, None, default_signature=irv2.FEATURE_VECTOR))


@pytest.fixture(scope="session")
def images(imagenet_module, photo_arrays) -> np.ndarray:
    """Two photos as the module takes them: ``[2, 299, 299, 3]`` float32 in [0, 1]."""
    return np.stack([imagenet_module.preprocess(photo_arrays[name]) for name in PHOTO_NAMES])


@pytest.fixture(scope="session")
def activations(imagenet_module, images) -> np.ndarray:
    """``Conv2d_7b_1x1`` of ``images`` ``[2, 8, 8, 1536]`` from ``module.endpoints``: what Grad-CAM starts from
    (the same for any head, as the backbone is)."""
    return imagenet_module.endpoints(images, ["Conv2d_7b_1x1"])["InceptionResnetV2/Conv2d_7b_1x1"]


@pytest.fixture(scope="session")
def image_files(tmp_path_factory, photo_arrays) -> dict[str, Path]:
    """The bundled photo (JPEG), two PNG photos and a text file named like an image."""
    root = tmp_path_factory.mktemp("explain_images")
    files = {"chelsea": root / "chelsea.jpg"}
    shutil.copyfile(irv2.sample_image(), files["chelsea"])
    for name in ("coffee", "rocket"):
        files[name] = root / f"{name}.png"
        Image.fromarray(photo_arrays[name]).save(files[name])
    files["broken"] = root / "notes.jpg"
    files["broken"].write_text("shopping list: milk, eggs\n")
    return files


@pytest.fixture(autouse=True)
def _restore_flush_denormal():
    """Tests that call ``irv2.cli.main.main`` in this process let it flush subnormals; undo it afterwards."""
    yield
    torch.set_flush_denormal(False)  # PyTorch's default
