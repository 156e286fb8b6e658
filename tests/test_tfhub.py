"""irv2.tfhub, TF-Hub's TF1 API over irv2: on the same weights it gives exactly what the plain irv2 API gives, and
describes the module as TF-Hub does (fast: random weights, no TensorFlow).

Images are two real photos at 160 px, which the modules take (any size from 75 up) at a fraction of 299's cost;
the info dicts are checked at the 299 the weights record.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

import irv2
import irv2.hub
import irv2.tfhub as hub
from irv2.api import Module as PlainModule
from irv2.api import ModuleInfo
from irv2.errors import HandleError, Irv2Error, OptionError
from irv2.preprocessing import preprocess_for_eval
from irv2.tfhub.images import ImageSize

CLASSIFICATION_URL = "https://tfhub.dev/google/imagenet/inception_resnet_v2/classification/1"
FEATURE_VECTOR_URL = "https://tfhub.dev/google/imagenet/inception_resnet_v2/feature_vector/1"


@pytest.fixture(scope="module")
def plain(weights_dir) -> PlainModule:
    """The random 1001-class module through the plain API: the reference every compat call is held to."""
    return irv2.load(weights_dir)


@pytest.fixture(scope="module")
def module(weights_dir) -> hub.Module:
    return hub.Module(weights_dir)


@pytest.fixture(scope="module")
def feature_vector_dir(weights_dir, tmp_path_factory):
    """The same backbone as a feature-vector module (no classifier), as feature_vector/1 is."""
    loaded = irv2.load(weights_dir)
    model = loaded.model
    model.reset_classifier(0)
    info = ModuleInfo(0, None, default_signature=irv2.FEATURE_VECTOR, preprocessing=loaded.preprocessing)
    return irv2.save(PlainModule(model, info), tmp_path_factory.mktemp("tfhub") / "feature-vector")


@pytest.fixture(scope="module")
def images(photo_arrays) -> np.ndarray:
    return np.stack([preprocess_for_eval(photo_arrays[name], size=160) for name in ("chelsea", "rocket")])


def test_calls_give_the_plain_api_numbers(module, plain, images):
    assert isinstance(module, irv2.Module)
    logits = module(images)
    assert np.array_equal(logits, plain(images))
    assert not np.allclose(logits[0], logits[1], atol=1e-3)  # the photos tell apart: a mix-up would show
    features = module(images, signature="image_feature_vector")
    assert features.shape == (2, 1536)
    assert np.array_equal(features, plain(images, signature="image_feature_vector"))

    outputs = module(dict(images=images), signature="image_classification", as_dict=True)
    expected = plain(dict(images=images), signature="image_classification", as_dict=True)
    assert sorted(outputs) == sorted(expected)
    for key, value in expected.items():
        assert np.array_equal(outputs[key], value), key
    assert np.array_equal(outputs["default"], logits)
    # Every output the info dict announces comes back, with that shape (batch 2, at 160 px here).
    info = module.get_output_info_dict("image_classification")
    assert set(info) <= set(outputs)
    assert outputs["InceptionResnetV2/Mixed_6a"].shape == (2, 8, 8, 1088)
    assert np.array_equal(module(inputs=images), logits)  # TF-Hub's keyword for the images


def test_info_dicts_are_tf_hubs(module, feature_vector_dir):
    assert module.get_signature_names() == ["default", "image_classification", "image_feature_vector"]
    for signature in (None, "default", "image_classification", "image_feature_vector"):
        ((name, images),) = module.get_input_info_dict(signature).items()
        assert name == "images" and images.get_shape().as_list() == [None, 299, 299, 3]
        assert images.dtype.name == "float32"
    assert list(module.get_output_info_dict()) == ["default"]  # the default signature has that output alone
    outputs = module.get_output_info_dict("image_classification")
    assert outputs["default"].get_shape().as_list() == [None, 1001] and outputs["default"].dtype.name == "float32"
    assert outputs["InceptionResnetV2/Mixed_6a"].get_shape().as_list() == [None, 17, 17, 1088]
    assert outputs["InceptionResnetV2/Conv2d_7b_1x1"].get_shape().as_list() == [None, 8, 8, 1536]
    assert module.get_output_info_dict("image_feature_vector")["default"].get_shape().as_list() == [None, 1536]

    features = hub.Module(feature_vector_dir)
    assert features.get_signature_names() == ["default", "image_feature_vector"]
    assert features.get_output_info_dict()["default"].get_shape().as_list() == [None, 1536]
    assert "InceptionResnetV2/Logits" not in features.get_output_info_dict("image_feature_vector")
    assert "InceptionResnetV2/PreLogitsFlatten" in features.get_output_info_dict("image_feature_vector")
    with pytest.raises(OptionError, match="image_classification"):
        features.get_output_info_dict("image_classification")


def test_feature_vector_module_gives_the_classifiers_features(feature_vector_dir, plain, images):
    features = hub.Module(feature_vector_dir)
    assert np.array_equal(features(images), plain(images, signature="image_feature_vector"))


def test_module_is_frozen_unless_trainable(module, weights_dir, images):
    assert not any(p.requires_grad for p in module.model.parameters())
    assert module.trainable_variables == [] and not module.training
    assert len(module.variables) == len(module.variable_map) > 0

    trainable = hub.Module(weights_dir, trainable=True)
    assert not trainable.training  # trainable alone keeps the inference graph, as in TF-Hub
    variables = trainable.variable_map
    assert variables["InceptionResnetV2/Conv2d_1a_3x3/weights"].requires_grad
    assert variables["InceptionResnetV2/Logits/Logits/biases"].requires_grad
    assert not variables["InceptionResnetV2/Conv2d_1a_3x3/BatchNorm/moving_mean"].requires_grad
    # What trains is exactly TF-Hub's variables: no BatchNorm scale, which the TF-Slim network does not have.
    trained = {name for name, p in trainable.model.named_parameters() if p.requires_grad}
    ids = {id(p) for p in trainable.trainable_variables}
    assert trained == {name for name, p in trainable.model.named_parameters() if id(p) in ids}
    assert trained and not any(name.endswith("bn.weight") for name in trained)

    x = torch.from_numpy(images[:1])
    trainable(x).sum().backward()
    assert variables["InceptionResnetV2/Conv2d_1a_3x3/weights"].grad is not None


def test_train_tags_give_the_train_graph(weights_dir, plain, images):
    train = hub.Module(weights_dir, trainable=True, tags={"train"})
    reference = irv2.load(weights_dir, tags={"train"})
    assert train.training and train.tags == {"train"}
    x = torch.from_numpy(images)
    with torch.no_grad():  # the feature vector has no dropout: batch statistics make it deterministic
        features = train(x, signature="image_feature_vector")
        assert torch.equal(features, reference(x, signature="image_feature_vector"))
    assert not np.allclose(features.numpy(), plain(images, signature="image_feature_vector"), atol=1e-3)

    # One training step, as docs/migrating.md takes it.
    optimizer = torch.optim.SGD(train.trainable_variables, lr=0.1)
    before = train.variable_map["InceptionResnetV2/Logits/Logits/weights"].detach().clone()
    loss = torch.nn.functional.cross_entropy(train(x), torch.tensor([282, 1]))
    loss.backward()
    optimizer.step()
    assert not torch.equal(train.variable_map["InceptionResnetV2/Logits/Logits/weights"], before)

    frozen = hub.Module(weights_dir, tags={"train"})
    assert frozen.training and not any(p.requires_grad for p in frozen.model.parameters())


@pytest.mark.parametrize("tags", [{"serve"}, {"train", "gpu"}, "serve"])
def test_unknown_tags_list_the_tag_sets(weights_dir, tags):
    message = r"tag sets set\(\) \(inference\) and \{'train'\}"
    with pytest.raises(OptionError, match=message):
        hub.Module(weights_dir, tags=tags)
    with pytest.raises(OptionError, match=message):
        hub.load_module_spec(weights_dir).get_output_info_dict(tags=tags)


def test_spec_describes_the_module(weights_dir, module, images):
    spec = hub.load_module_spec(weights_dir)
    assert spec.get_tags() == [set(), {"train"}]
    assert spec.get_signature_names() == spec.get_signature_names(tags={"train"}) == module.get_signature_names()
    assert hub.get_expected_image_size(spec) == [299, 299] and hub.get_num_image_channels(spec) == 3
    for signature in (None, "image_classification", "image_feature_vector"):
        assert spec.get_input_info_dict(signature) == module.get_input_info_dict(signature)
        assert spec.get_output_info_dict(signature) == module.get_output_info_dict(signature)
    first, second = hub.Module(spec), hub.Module(spec)
    assert first.model is not second.model  # each instance has its own variables, as in TF-Hub
    assert np.array_equal(first(images), module(images))
    assert spec.get_output_info_dict() == module.get_output_info_dict()  # still answers, its weights handed over

    train = hub.Module(spec, tags={"train"})
    train_info = spec.get_output_info_dict("image_classification", tags={"train"})
    assert train_info == train.get_output_info_dict("image_classification")
    assert (
        "InceptionResnetV2/AuxLogits" in train_info
        and "InceptionResnetV2/AuxLogits" not in module.get_output_info_dict("image_classification")
    )


def test_spec_loads_at_first_use(tmp_path):
    spec = hub.load_module_spec(tmp_path / "missing")
    with pytest.raises(HandleError, match="missing"):
        spec.get_signature_names()


def test_expected_image_size_and_channels(module, plain):
    for target in (module, plain):
        size = hub.get_expected_image_size(target)
        assert isinstance(size, list) and size == [299, 299]
        assert hub.get_expected_image_size(target, signature="image_feature_vector", input_name="images") == size
        assert hub.get_num_image_channels(target) == 3
    resized = PlainModule(plain.model, ModuleInfo(1001, None, image_size=(160, 192)))
    assert hub.get_expected_image_size(resized) == [160, 192]
    with pytest.raises(OptionError, match=r"input_name 'pixels'.*\['images'\]"):
        hub.get_expected_image_size(module, input_name="pixels")
    with pytest.raises(OptionError, match="signature 'image_segmentation'"):
        hub.get_num_image_channels(module, signature="image_segmentation")


def test_registered_handles_load_from_the_cache(monkeypatch, tmp_path, weights_dir, feature_vector_dir, plain):
    monkeypatch.setenv("IRV2_HOME", str(tmp_path))
    monkeypatch.setenv("IRV2_OFFLINE", "1")
    for url, folder in ((CLASSIFICATION_URL, weights_dir), (FEATURE_VECTOR_URL, feature_vector_dir)):
        cache = irv2.hub.module_cache_dir(irv2.hub.resolve_source(url))
        shutil.copytree(folder, cache, copy_function=os.link)
    classifier = hub.Module(CLASSIFICATION_URL)
    assert classifier.num_classes == 1001 and classifier.weights_sha256() == plain.weights_sha256()
    features = hub.Module(hub.load_module_spec(FEATURE_VECTOR_URL))
    assert features.get_output_info_dict()["default"].get_shape().as_list() == [None, 1536]


def test_export_writes_what_module_reads(module, tmp_path):
    module.export(tmp_path / "exported", session=None)
    assert hub.Module(tmp_path / "exported").weights_sha256() == module.weights_sha256()


def test_attached_messages_are_none_and_image_size_looks_there_first(module, weights_dir):
    spec = hub.load_module_spec(weights_dir)
    for target in (module, spec):
        assert target.get_attached_message("image_module_info", hub.ImageModuleInfo) is None
        with pytest.raises(KeyError, match="attaches no message under 'image_module_info'"):
            target.get_attached_message("image_module_info", hub.ImageModuleInfo, required=True)
    assert spec.get_attached_message("anything", object, tags={"train"}) is None

    class Attaching(hub.Module):
        """A module that attaches an ImageModuleInfo, as TF-Hub's v3 modules do: its size wins."""

        def get_attached_message(self, key, message_type, required=False):
            assert (key, message_type) == ("image_module_info", hub.ImageModuleInfo)
            return hub.ImageModuleInfo(ImageSize(height=320, width=352))

    attaching = Attaching(weights_dir)
    assert hub.get_expected_image_size(attaching) == [320, 352]
    assert hub.get_expected_image_size(module) == [299, 299]  # nothing attached: the input's shape
    assert not hub.ImageModuleInfo().HasField("default_image_size")
    assert hub.ImageModuleInfo(ImageSize(299, 299)).HasField("default_image_size")


def test_eval_function_for_module_gives_numpy(weights_dir, plain, images):
    with hub.eval_function_for_module(weights_dir) as evaluate:
        assert np.array_equal(evaluate(images), plain(images))
        outputs = evaluate(dict(images=images.tolist()), signature="image_feature_vector", as_dict=True)
        assert isinstance(outputs["default"], np.ndarray)
        assert np.array_equal(outputs["default"], plain(images, signature="image_feature_vector"))
    with pytest.raises(RuntimeError, match="inside its `with` block"):
        evaluate(images)


def test_resolve_gives_the_folder_that_loads(monkeypatch, tmp_path, weights_dir, plain):
    assert hub.resolve(weights_dir) == os.fspath(weights_dir)  # a local path, as it is
    monkeypatch.setenv("IRV2_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IRV2_OFFLINE", "1")
    cache = irv2.hub.module_cache_dir(irv2.hub.resolve_source(CLASSIFICATION_URL))
    shutil.copytree(weights_dir, cache, copy_function=os.link)
    folder = hub.resolve(CLASSIFICATION_URL)
    assert folder == os.fspath(cache)
    assert hub.Module(folder).weights_sha256() == plain.weights_sha256()
    with pytest.raises(HandleError, match="no-such-module"):
        hub.resolve("no-such-module")


@pytest.mark.parametrize(
    ("name", "instead"),
    [
        ("LatestModuleExporter", r"irv2\.save"),
        ("image_embedding_column", "image_feature_vector"),
        ("text_embedding_column", "image model"),
        ("create_module_spec", r"irv2\.save"),
    ],
)
def test_tf_hubs_other_names_say_what_to_use(name, instead):
    with pytest.raises(Irv2Error, match=f"hub.{name} is not supported.*{instead}"):
        getattr(hub, name)("https://tfhub.dev/google/imagenet/inception_resnet_v2/classification/4")


def test_no_other_names():
    with pytest.raises(AttributeError, match="no_such_name"):
        hub.no_such_name  # noqa: B018
