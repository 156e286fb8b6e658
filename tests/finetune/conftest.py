"""Fixtures for the fine-tuning tests: drawn datasets, random starting weights.

No weights can be downloaded here, so runs start from a randomly initialised network whose BatchNorm
statistics are measured on a few drawn images (without that, activations fade through the 40 residual
blocks and every image gets nearly the same features). See ``shapes.py`` for why these classes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from finetune_support import random_module
from shapes import CLASSES, write_dataset

import irv2


@pytest.fixture(scope="session")
def start_weights(tmp_path_factory) -> Path:
    """A native irv2 module folder holding :func:`finetune_support.random_module`."""
    return irv2.save(random_module(), tmp_path_factory.mktemp("start") / "random-irv2")


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> Path:
    """Four classes x 50 drawn images (PNG and JPEG) in class folders: the linear-mode accuracy set."""
    root = tmp_path_factory.mktemp("shapes")
    write_dataset(root, 50, seed=0)
    return root


@pytest.fixture(scope="session")
def held_out(tmp_path_factory) -> dict[str, list[Path]]:
    """Two more images per class, drawn with another seed, never seen in training."""
    return write_dataset(tmp_path_factory.mktemp("held_out"), 2, seed=99)


@pytest.fixture
def small_dir(tmp_path) -> Path:
    """Three classes x 5 images: for runs whose result does not matter, only their mechanics."""
    write_dataset(tmp_path / "small", 5, seed=1, classes=CLASSES[:3])
    return tmp_path / "small"


@pytest.fixture(autouse=True)
def _restore_flush_denormal():
    """The CLI flushes subnormals when run in-process; undo it for the other tests."""
    yield
    torch.set_flush_denormal(False)
