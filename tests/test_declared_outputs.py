"""Info dicts follow what a TF-Hub module's own file declares (``irv2.api.declared_outputs``): the file's keys and
shapes where irv2's call gives them, irv2's own list where the file says nothing. Fast tests on a random network with
a declaration written into its provenance; the last test reads a module that TensorFlow exported, next to what
``tensorflow_hub`` itself reads from it."""

from __future__ import annotations

import json
import os
import shutil
import tarfile

import numpy as np
import pytest
import torch

import irv2
import irv2.tfhub as hub
from irv2.api import Module, ModuleInfo
from irv2.api.declared_outputs import PROVENANCE_KEY, provenance_record
from irv2.batch.stream import output_shape
from irv2.errors import CheckpointError
from irv2.formats import DeclaredTensor
from irv2.model import InceptionResNetV2
from requires import require_tensorflow_hub

MIXED_6A = "InceptionResnetV2/Mixed_6a"
AUX = "InceptionResnetV2/AuxLogits"
LOGITS = "InceptionResnetV2/Logits"


def _float(*dims: int | None) -> DeclaredTensor:
    return DeclaredTensor("float32", dims)


# As a module's saved_model.pb may declare it: the classification signature with some end points, one that only the
# train graph computes (AuxLogits), one irv2 does not have, and entries irv2 cannot take as they are.
CLASSIFICATION = {
    "default": _float(None, 1001),
    MIXED_6A: _float(None, None, None, 1088),  # a size left unknown: the file's word stands
    "InceptionResnetV2/Conv2d_7b_1x1": _float(1, 8, 8, 1536),  # a size fixed where irv2 leaves it open: the same
    AUX: _float(None, 1001),
    LOGITS: _float(None, 1000),  # contradicts the weights: irv2's shape
    "InceptionResnetV2/Predictions": DeclaredTensor("float32", None),  # unknown rank: irv2's shape
    "InceptionResnetV2/PreLogitsFlatten": DeclaredTensor("float32", (None, 1536), "coo_sparse"),  # not dense: irv2's
    "BottleneckFeatures": _float(None, 2048),  # an output irv2 does not compute
}
DECLARED = {
    (): {
        "default": {"default": _float(None, 1001)},
        "image_classification": CLASSIFICATION,
        "image_feature_vector": {"default": _float(None, None)},
    },
    ("train",): {"image_classification": CLASSIFICATION},  # no feature vector: irv2's own list there
}


@pytest.fixture(scope="module")
def plain() -> Module:
    """The random network without a declaration: irv2's own info dicts."""
    torch.manual_seed(0)
    return Module(InceptionResNetV2(num_classes=1001).eval(), ModuleInfo(1001, None))


@pytest.fixture
def module(plain) -> Module:
    """The same network and engine, as read from a module file that declares :data:`DECLARED`."""
    info = ModuleInfo(1001, None, provenance={PROVENANCE_KEY: provenance_record(DECLARED)})
    return Module(plain.model, info, plain.engine)


def shapes(info: dict) -> dict[str, list[int | None]]:
    return {key: value.get_shape().as_list() for key, value in info.items()}


def test_info_dicts_list_what_the_file_declares(module, plain):
    assert shapes(module.get_output_info_dict()) == {"default": [None, 1001]}
    classification = module.get_output_info_dict("image_classification")
    # The file's keys that the call gives, in irv2's order; AuxLogits (train graph only) and the unknown key left out.
    assert shapes(classification) == {
        "default": [None, 1001],
        MIXED_6A: [None, None, None, 1088],
        "InceptionResnetV2/Conv2d_7b_1x1": [1, 8, 8, 1536],
        "InceptionResnetV2/PreLogitsFlatten": [None, 1536],
        LOGITS: [None, 1001],
        "InceptionResnetV2/Predictions": [None, 1001],
    }
    assert all(value.dtype.name == "float32" and not value.is_sparse for value in classification.values())
    assert set(classification) < set(plain.get_output_info_dict("image_classification"))
    # The call gives every key the info dict announces.
    outputs = module(np.zeros((1, 299, 299, 3), np.float32), signature="image_classification", as_dict=True)
    assert set(classification) <= set(outputs)
    assert shapes(module.get_output_info_dict("image_feature_vector")) == {"default": [None, None]}
    # Loaded with the feature vector as its default signature, the file's default (logits) contradicts it.
    features_first = ModuleInfo(1001, None, default_signature="image_feature_vector", provenance=module.info.provenance)
    assert shapes(Module(plain.model, features_first, plain.engine).get_output_info_dict()) == {"default": [None, 1536]}
    # Nothing is lost: the provenance keeps the file's whole declaration.
    recorded = module.info.provenance[PROVENANCE_KEY][""]["image_classification"]
    assert recorded["BottleneckFeatures"] == {"dtype": "float32", "shape": [None, 2048]}
    assert recorded["InceptionResnetV2/PreLogitsFlatten"]["encoding"] == "coo_sparse"


def test_the_train_graph_follows_its_own_declaration(module, plain):
    module.train()
    plain.train()
    try:
        classification = module.get_output_info_dict("image_classification")
        assert shapes(classification)[AUX] == [None, 1001]  # the train graph computes AuxLogits
        assert "BottleneckFeatures" not in classification
        # The file declares no image_feature_vector in the train graph: irv2's own list.
        assert module.get_output_info_dict("image_feature_vector") == plain.get_output_info_dict("image_feature_vector")
    finally:
        module.eval()
        plain.eval()


def test_without_a_declaration_the_list_is_irv2s(plain):
    assert list(plain.get_output_info_dict()) == ["default"]
    classification = plain.get_output_info_dict("image_classification")
    assert len(classification) == 17 and classification[MIXED_6A].get_shape() == [None, 17, 17, 1088]
    silent = ModuleInfo(1001, None, provenance={PROVENANCE_KEY: provenance_record({(): {}})})
    quiet = Module(plain.model, silent, plain.engine)
    assert quiet.get_output_info_dict("image_classification") == classification


def test_batch_jobs_size_end_points_as_irv2_computes_them(module):
    # The file leaves Mixed_6a's size unknown and lists no Mixed_5b; a job's rows still have their shapes.
    assert output_shape(module, "Mixed_6a") == (17, 17, 1088)
    assert output_shape(module, "InceptionResnetV2/Mixed_5b") == (35, 35, 320)


@pytest.fixture(scope="module")
def saved(plain, tmp_path_factory):
    info = ModuleInfo(1001, None, provenance={PROVENANCE_KEY: provenance_record(DECLARED)})
    return irv2.save(Module(plain.model, info, plain.engine), tmp_path_factory.mktemp("declared") / "module")


def test_the_declaration_survives_save_and_load(saved, module):
    loaded = irv2.load(saved)
    assert loaded.info.provenance[PROVENANCE_KEY] == module.info.provenance[PROVENANCE_KEY]
    spec = hub.load_module_spec(saved)
    tf_module = hub.Module(spec)
    for signature in (None, "image_classification", "image_feature_vector"):
        expected = module.get_output_info_dict(signature)
        assert loaded.get_output_info_dict(signature) == expected
        assert tf_module.get_output_info_dict(signature) == expected
        assert spec.get_output_info_dict(signature) == expected
    train = irv2.load(saved, tags={"train"})
    assert spec.get_output_info_dict("image_classification", tags={"train"}) == train.get_output_info_dict(
        "image_classification"
    )
    assert AUX in train.get_output_info_dict("image_classification")
    # The file leaves the feature vector's width unknown, which any width agrees with.
    layer = hub.KerasLayer(saved, signature="image_feature_vector", output_shape=[1536])
    assert layer.module.get_output_info_dict("image_feature_vector")["default"].get_shape() == [None, None]


@pytest.mark.parametrize(
    "record",
    [
        {"": {"default": {"default": {"dtype": "float32", "shape": [None, -1]}}}},
        {"": {"default": {"default": {"shape": [None, 1001]}}}},
        {"": {"default": ["default"]}},
        "default",
    ],
)
def test_a_damaged_record_names_irv2_json(saved, tmp_path, record):
    copy = tmp_path / "module"
    shutil.copytree(saved, copy, copy_function=os.link)
    config_file = copy / "irv2.json"
    config = json.loads(config_file.read_text())
    config["provenance"][PROVENANCE_KEY] = record
    config_file.unlink()  # a hard link to the saved module's: write a new file, not through the link
    config_file.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"provenance '{PROVENANCE_KEY}' is not what irv2 writes") as caught:
        irv2.load(copy)
    assert caught.value.path == str(config_file)


# --- a module that TensorFlow exported --------------------------------------------------------------------------

EXPORTED = {
    "default": {"default": [None, 1001]},
    "image_classification": {
        "default": [None, 1001],
        MIXED_6A: [None, None, None, 1088],
        "InceptionResnetV2/Conv2d_7b_1x1": [None, 8, 8, 1536],
        AUX: [None, 1001],
        LOGITS: [None, 1000],
        "BottleneckFeatures": [None, 2048],
    },
    # image_feature_vector left to the stand-in's own output, default [None, 1]: not the network's.
}


@pytest.mark.slow
@pytest.mark.tensorflow
def test_a_module_tensorflow_exported(tmp_path, monkeypatch):
    import tf_writers
    from fixture_weights import random_slim_weights

    folder = tf_writers.write_hub_module(tmp_path / "classification", random_slim_weights(seed=22), outputs=EXPORTED)
    module = irv2.load(folder)
    classification = module.get_output_info_dict("image_classification")
    assert shapes(classification) == {
        "default": [None, 1001],
        MIXED_6A: [None, None, None, 1088],
        "InceptionResnetV2/Conv2d_7b_1x1": [None, 8, 8, 1536],
        LOGITS: [None, 1001],  # the file says 1000, the weights give 1001
    }
    assert shapes(module.get_output_info_dict("image_feature_vector")) == {"default": [None, 1536]}  # likewise
    assert shapes(irv2.load(folder, tags={"train"}).get_output_info_dict("image_classification"))[AUX] == [None, 1001]

    # Where irv2 takes the file's word, TF-Hub reads the same from the file.
    tensorflow_hub = require_tensorflow_hub(monkeypatch, "tensorflow_hub", "TF-Hub's reading of the same file")
    tf_spec = tensorflow_hub.load_module_spec(str(folder))
    for signature in ("default", "image_classification"):
        theirs = tf_spec.get_output_info_dict(signature)
        for key, info in module.get_output_info_dict(signature).items():
            if key != LOGITS:
                assert info.get_shape().as_list() == theirs[key].get_shape().as_list(), key
                assert info.dtype.name == theirs[key].dtype.name, key

    # The same from the module's tarball (read before its extracted copy goes) and from irv2's own copy of it.
    tarball = tmp_path / "classification.tar.gz"
    with tarfile.open(tarball, "w:gz", compresslevel=1) as tar:
        for entry in sorted(os.listdir(folder)):
            tar.add(os.path.join(folder, entry), arcname=entry)
    from_tarball = irv2.load(tarball)
    converted = irv2.load(irv2.save(from_tarball, tmp_path / "converted"))
    for loaded in (from_tarball, converted):
        assert loaded.info.provenance[PROVENANCE_KEY] == module.info.provenance[PROVENANCE_KEY]
        assert loaded.get_output_info_dict("image_classification") == classification
