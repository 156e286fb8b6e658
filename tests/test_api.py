"""The TF-Hub-style module API and the native save format (fast: random weights, no TensorFlow)."""

import inspect
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import irv2
from bfloat16_support import BFLOAT16_HERE, assert_refused
from irv2.api import Module, ModuleInfo
from irv2.model import InceptionResNetV2


@pytest.fixture(scope="module")
def module():
    torch.manual_seed(0)
    net = InceptionResNetV2().eval()
    return Module(net, ModuleInfo(1001, irv2.labels(), provenance={"source": "random"}))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 1, (2, 299, 299, 3)).astype(np.float32)


def test_signatures_follow_tf_hub(module, images):
    logits = module(images)
    assert isinstance(logits, np.ndarray) and logits.shape == (2, 1001) and logits.dtype == np.float32
    features = module(images, signature="image_feature_vector")
    assert features.shape == (2, 1536)
    assert np.array_equal(module(images, signature="image_classification", as_dict=True)["default"], logits)
    outputs = module(images, signature="image_feature_vector", as_dict=True)
    assert np.array_equal(outputs["default"], features)
    assert all(key.startswith("InceptionResnetV2/") for key in set(outputs) - {"default"})
    assert module.expected_image_size == irv2.get_expected_image_size(module) == (299, 299)


def test_module_maps_zero_one_to_minus_one_one(module, images):
    # The TF-Hub module computes 2x - 1 inside; module.model is the bare TF-Slim network on [-1, 1].
    with torch.no_grad():
        direct = module.model(torch.from_numpy(2 * images - 1).permute(0, 3, 1, 2))
    np.testing.assert_allclose(module(images), direct.numpy(), rtol=0, atol=1e-5)


def test_features_are_the_pre_dropout_global_average(module, images):
    with torch.no_grad():
        fmap = module.model.forward_features(torch.from_numpy(2 * images - 1).permute(0, 3, 1, 2))
    np.testing.assert_allclose(
        module(images, signature="image_feature_vector"), fmap.mean((2, 3)).numpy(), rtol=0, atol=1e-6
    )


def test_tensor_input_gives_differentiable_tensor(module, images):
    x = torch.from_numpy(images[:1]).requires_grad_()
    out = module(x, signature="image_feature_vector")
    assert isinstance(out, torch.Tensor)
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((299, 299, 3), np.float32), r"add a batch axis, images\[None\]"),
        (np.zeros((1, 3, 299, 299), np.float32), "channels first"),
        (np.zeros((1, 299, 299, 3), np.uint8), "divide by 255"),
        (np.zeros((1, 60, 60, 3), np.float32), "at least 75"),
    ],
)
def test_bad_images_are_explained(module, bad, message):
    with pytest.raises(irv2.InputError, match=message):
        module(bad)


def test_unknown_signature(module, images):
    with pytest.raises(irv2.OptionError, match="signature 'image_segmentation': no such signature"):
        module(images, signature="image_segmentation")


def test_save_and_load_round_trip(module, images, tmp_path):
    path = irv2.save(module, tmp_path / "saved")
    config = json.loads((path / "irv2.json").read_text())
    assert config["num_classes"] == 1001 and config["image_size"] == [299, 299]
    assert config["labels"][:2] == ["background", "tench"]
    assert config["provenance"]["source"] == "random"
    loaded = irv2.load(path)
    assert np.array_equal(loaded(images), module(images))
    assert loaded.labels == module.labels and loaded.model.aux_logits is not None
    # Nothing but the two final files is left behind (no temporaries).
    assert sorted(p.name for p in path.iterdir()) == ["irv2.json", "model.safetensors"]


def test_load_options(module, tmp_path, images):
    path = irv2.save(module, tmp_path / "saved")
    features = irv2.load(path, signature="image_feature_vector", dtype=torch.float64)
    assert features.dtype == torch.float64
    out = features(images.astype(np.float64))
    assert out.shape == (2, 1536)
    np.testing.assert_allclose(out, module(images, signature="image_feature_vector"), rtol=0, atol=1e-4)


def test_timm_style_state_dict_loads_as_is(tmp_path, images):
    # timm's inception_resnet_v2.tf_in1k: 1000 classes, no aux head, same keys.
    torch.manual_seed(1)
    net = InceptionResNetV2(num_classes=1000, aux_logits=False).eval()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(state, tmp_path / "timm.safetensors")
    loaded = irv2.load(tmp_path / "timm.safetensors")
    assert loaded.num_classes == 1000 and loaded.labels[0] == "tench"
    with torch.no_grad():
        expected = net(torch.from_numpy(2 * images - 1).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(loaded(images), expected, rtol=0, atol=1e-5)


def test_state_dict_that_does_not_fit_is_named(tmp_path):
    state = InceptionResNetV2(num_classes=1000, aux_logits=False).state_dict()
    state.pop("repeat_1.3.conv2d.bias")
    state["mixed_5b.branch0.conv.weight"] = torch.zeros(95, 192, 1, 1)
    save_file(state, tmp_path / "broken.safetensors")
    with pytest.raises(irv2.WeightMismatchError, match=r"missing repeat_1\.3\.conv2d\.bias") as info:
        irv2.load(tmp_path / "broken.safetensors")
    assert "mixed_5b.branch0.conv.weight: [95, 192, 1, 1]" in str(info.value)


def test_features_only_module_refuses_classification(tmp_path, images):
    net = InceptionResNetV2(num_classes=0).eval()
    path = irv2.save(Module(net, ModuleInfo(0, None, default_signature="image_feature_vector")), tmp_path / "fv")
    loaded = irv2.load(path)
    assert loaded.signatures == ("image_feature_vector",)
    assert loaded(images).shape == (2, 1536)
    with pytest.raises(ValueError, match="no such signature"):
        loaded(images, signature="image_classification")
    with pytest.raises(ValueError, match="no classifier"):
        irv2.load(path, signature="image_classification")


def test_unusable_handles(tmp_path):
    with pytest.raises(irv2.HandleError, match="no such file"):
        irv2.load(tmp_path / "nothing-here")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(irv2.CheckpointError, match=r"junk\.safetensors"):
        irv2.load(tmp_path / "junk.safetensors")
    bad = tmp_path / "badconfig"
    bad.mkdir()
    (bad / "irv2.json").write_text("{not json")
    with pytest.raises(irv2.CheckpointError, match=r"irv2\.json"):
        irv2.load(bad)


def test_load_has_one_option_per_choice():
    """``engine`` is the one choice of what runs the network (no ``fast``/``compile`` beside it), and options
    that only shape the training graph live with training (``irv2.finetune.set_train_mode``)."""
    parameters = inspect.signature(irv2.load).parameters
    keywords = [name for name, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert len(keywords) <= 8, keywords
    assert {"engine", "dtype", "tags"} <= set(keywords) and not {"fast", "compile", "dropout_rate"} & set(keywords)
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def test_engine_and_dtype_are_checked_before_any_weights_are_read(tmp_path):
    missing = tmp_path / "nothing-here"
    with pytest.raises(ValueError, match="unknown engine 'turbo'; use one of 'torch', 'plain'"):
        irv2.load(missing, engine="turbo")
    with pytest.raises(ValueError, match="engine 'onnxruntime' runs dtype float32, not int8"):
        irv2.load(missing, engine="onnxruntime", dtype="int8")
    if BFLOAT16_HERE:
        with pytest.raises(ValueError, match="engine 'onnxruntime' runs dtype float32, not bfloat16"):
            irv2.load(missing, engine="onnxruntime", dtype="bf16")
    else:
        assert_refused(irv2.load, missing, engine="onnxruntime", dtype="bf16")
    with pytest.raises(ValueError, match="unknown dtype 'float8'"):
        irv2.load(missing, dtype="float8")
