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
from evaluate_support import BROKEN, COUNT, FINETUNED_CLASSES, RANKS, SYNSETS, draw_images, ranked_labels
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


def _drawn(photo_arrays, module: Module) -> Drawn:
    files = draw_images(photo_arrays, COUNT, broken=[BROKEN])
    good = [f for i, f in enumerate(files) if i != BROKEN]
    logits = module(np.stack([module.preprocess(f) for f in good]))
    labels = ranked_labels(logits, irv2.synsets(1001), RANKS)
    assert "background" not in labels  # a label is never "background" (the test would not be about synsets)
    return Drawn(files, [*labels, SYNSETS[0]], logits)


@pytest.fixture(scope="session")
def drawn(photo_arrays, eval_module) -> Drawn:
    return _drawn(photo_arrays, eval_module)


@pytest.fixture(scope="session")
def tf_module(tf_files) -> Module:
    """TF-Hub's classification/1 as TensorFlow writes it, with the seeded weights of the parity tests."""
    return irv2.load(tf_files["hub_classification"])


@pytest.fixture(scope="session")
def tf_drawn(photo_arrays, tf_module) -> Drawn:
    """The drawn images labelled from what the TF-written weights predict."""
    return _drawn(photo_arrays, tf_module)


@pytest.fixture(params=["irv2-written", "tf-written"])
def weights_and_drawn(request) -> tuple[Module, Drawn]:
    """The random weights irv2 saved, and the TF-Hub module TensorFlow wrote, each with its drawn labels."""
    if request.param == "irv2-written":
        return request.getfixturevalue("eval_module"), request.getfixturevalue("drawn")
    return request.getfixturevalue("tf_module"), request.getfixturevalue("tf_drawn")


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
