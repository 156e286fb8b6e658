"""TorchScript export of a fine-tuned (5-class) module, read back with ``torch.jit.load``."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from export_support import FLOWERS, TOLERANCE, assert_matches_module

from irv2.export import export


@pytest.fixture(scope="session")
def flowers_ts(tmp_path_factory, flowers_module):
    """Exported once with the built-in check (the format comes from the ``.pt`` suffix)."""
    return export(flowers_module, tmp_path_factory.mktemp("torchscript") / "flowers.pt")


@pytest.fixture(scope="session")
def flowers_scripted(flowers_ts) -> torch.jit.ScriptModule:
    return _load(flowers_ts.path)


def _load(path, extra_files=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
        return torch.jit.load(str(path), _extra_files=extra_files or {})


def test_export_reports_the_check(flowers_ts):
    assert flowers_ts.format == "torchscript" and flowers_ts.path.is_file()
    assert set(flowers_ts.errors) == {"logits", "features"}
    assert all(0 <= error <= TOLERANCE for error in flowers_ts.errors.values())


@pytest.mark.parametrize("which", ["batch1", "batch3", "263x320"])
def test_torchscript_matches_irv2(flowers_scripted, flowers_module, images, odd_images, which):
    batch = {"batch1": images[:1], "batch3": images[2:5], "263x320": odd_images}[which]
    with torch.inference_mode():
        logits, features = flowers_scripted(torch.from_numpy(batch))
    assert logits.shape == (len(batch), 5)
    assert_matches_module({"logits": logits.numpy(), "features": features.numpy()}, flowers_module, batch)


def test_torchscript_carries_metadata(flowers_ts):
    extra = {"irv2.json": ""}
    _load(flowers_ts.path, extra)
    metadata = json.loads(extra["irv2.json"])
    assert metadata["labels"] == FLOWERS and metadata["num_classes"] == 5
    assert metadata["outputs"] == {"logits": ["batch", 5], "features": ["batch", 1536]}
    assert metadata["inputs"]["images"]["shape"] == ["batch", "height", "width", 3]
