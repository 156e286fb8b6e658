"""Fixtures for the evaluation tests: drawn images, what the random weights predict for them, and labels chosen
from those predictions so that the exact top-1 and top-5 each layout must give are known in advance.

Of 15 drawn images, the last is broken (a truncated JPEG). The other 14 are labelled: 5 with the class the
weights rank first, 4 with their 2nd to 5th choice, 5 with a class they rank 700th. So top-1 must be 5/14 and
top-5 9/14 exactly, with the broken image counted under ``errors`` and in no denominator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import irv2
from evaluate_support import BROKEN, COUNT, FINETUNED_CLASSES, MARGIN, RANKS, SYNSETS, draw_images
from irv2.api import Module, ModuleInfo
from irv2.model import InceptionResNetV2
from irv2.preprocessing import Preprocessing


@dataclass(frozen=True)
class Drawn:
    """The images (JPEG bytes; ``BROKEN`` is truncated), each image's label (a synset), and the 1001-class logits
    of the good ones."""

    files: list[bytes]
    labels: list[str]
    logits: np.ndarray


@pytest.fixture(scope="session")
def eval_module(weights_dir) -> Module:
    """The random 1001-class weights, as ``irv2.load`` gives them (eager PyTorch: the suite's IRV2_ENGINE)."""
    return irv2.load(weights_dir)


def _ranked_labels(logits: np.ndarray, keys: list[str], ranks: list[int]) -> list[str]:
    order = np.argsort(-logits, axis=1, kind="stable")
    ordered = -np.sort(-logits, axis=1)
    labels = []
    for i, rank in enumerate(ranks):
        # What decides the scores: the label's class is first by a clear margin (rank 0), or clearly below the
        # first and clearly above the sixth (ranks 1-4).
        first, mine, sixth = ordered[i, 0], ordered[i, rank], ordered[i, 5]
        clear = first - ordered[i, 1] > MARGIN if rank == 0 else first - mine > MARGIN and mine - sixth > MARGIN
        assert rank >= 5 or clear, f"image {i}: its logits {ordered[i, :6]} are too close to rank its label"
        labels.append(keys[order[i, rank]])
    return labels


@pytest.fixture(scope="session")
def drawn(photo_arrays, eval_module) -> Drawn:
    files = draw_images(photo_arrays, COUNT, broken=[BROKEN])
    good = [f for i, f in enumerate(files) if i != BROKEN]
    logits = eval_module(np.stack([eval_module.preprocess(f) for f in good]))
    labels = _ranked_labels(logits, irv2.synsets(1001), RANKS)
    assert "background" not in labels  # a label is never "background" (the test would not be about synsets)
    return Drawn(files, [*labels, SYNSETS[0]], logits)


@pytest.fixture(scope="session")
def module_1000(tmp_path_factory, eval_module) -> Module:
    """The same weights with Keras' and timm's 1000-class head: the 1001-class head without its "background" row."""
    model = eval_module.model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for key in ("classif.weight", "classif.bias", "aux_logits.classif.weight", "aux_logits.classif.bias"):
        if key in state:
            state[key] = state[key][1:]
    network = InceptionResNetV2(num_classes=1000)
    network.load_state_dict(state)
    info = ModuleInfo(1000, irv2.labels(1000), preprocessing=eval_module.preprocessing)
    path = tmp_path_factory.mktemp("keras-like") / "module"
    irv2.save(Module(network.eval(), info), path)
    return irv2.load(path)


@pytest.fixture(scope="session")
def finetuned(tmp_path_factory, eval_module) -> Path:
    """A module as ``irv2 finetune`` saves one: a new 3-class head, its class names as labels, its own image size
    (160 px, recorded in its preprocessing)."""
    model = irv2.load(eval_module.info.provenance["loaded_from"]).model
    model.reset_classifier(len(FINETUNED_CLASSES))
    torch.manual_seed(3)
    torch.nn.init.normal_(model.classif.weight, std=0.5)
    info = ModuleInfo(len(FINETUNED_CLASSES), list(FINETUNED_CLASSES), preprocessing=Preprocessing(image_size=160))
    path = tmp_path_factory.mktemp("finetuned") / "my-model"
    irv2.save(Module(model.eval(), info), path)
    return path


@pytest.fixture(autouse=True)
def _restore_flush_denormal():
    """Tests that call ``irv2.cli.main.main`` in this process let it flush subnormals; undo it afterwards."""
    yield
    torch.set_flush_denormal(False)  # PyTorch's default
