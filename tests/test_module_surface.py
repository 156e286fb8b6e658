"""TF-Hub's calling conventions and hub.Module methods on ``irv2.Module`` (fast: random weights, no TensorFlow):
the dict call form, inputs that are refused with an irv2 error naming ``images``, end points on every engine
and from the narrow call, the info dicts and ``variable_map``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import irv2
from irv2.api import Module, ModuleInfo
from irv2.model import InceptionResNetV2
from slim_template import variables as slim_variables

SCOPE = "InceptionResnetV2/"
# TF-Slim's end points at 299 px, NHWC, from the spec's table (section 2), batch left out.
SHAPES_299 = {
    "Conv2d_1a_3x3": [149, 149, 32],
    "Conv2d_2a_3x3": [147, 147, 32],
    "Conv2d_2b_3x3": [147, 147, 64],
    "MaxPool_3a_3x3": [73, 73, 64],
    "Conv2d_3b_1x1": [73, 73, 80],
    "Conv2d_4a_3x3": [71, 71, 192],
    "MaxPool_5a_3x3": [35, 35, 192],
    "Mixed_5b": [35, 35, 320],
    "Mixed_6a": [17, 17, 1088],
    "PreAuxLogits": [17, 17, 1088],
    "Mixed_7a": [8, 8, 2080],
    "Conv2d_7b_1x1": [8, 8, 1536],
    "global_pool": [1, 1, 1536],
    "PreLogitsFlatten": [1536],
    "Logits": [1001],
    "Predictions": [1001],
}


def _random_network(num_classes: int = 1001) -> InceptionResNetV2:
    torch.manual_seed(0)
    net = InceptionResNetV2(num_classes=num_classes)
    for layer in net.modules():  # BatchNorm statistics away from the identity, so that mistakes show
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.1, 0.1)
            layer.running_var.uniform_(0.5, 2.0)
            layer.bias.data.uniform_(-0.1, 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def module() -> Module:
    return Module(_random_network(), ModuleInfo(1001, irv2.labels()))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, (2, 299, 299, 3)).astype(np.float32)


def _plain_endpoints(module: Module, images: np.ndarray) -> dict[str, np.ndarray]:
    """The end points computed here, stage by stage on the plain network, independently of irv2's call."""
    net = module.model
    x = torch.from_numpy(2 * images - 1).permute(0, 3, 1, 2)
    points = {}
    with torch.no_grad():
        for name, attr in irv2.model.STAGES:
            x = getattr(net, attr)(x)
            points[name] = x.permute(0, 2, 3, 1).numpy()
        pooled = x.mean((2, 3))
        logits = net.classif(pooled)
    points.update(
        global_pool=pooled[:, None, None, :].numpy(),
        PreLogitsFlatten=pooled.numpy(),
        Logits=logits.numpy(),
        Predictions=torch.softmax(logits, 1).numpy(),
    )
    return {name: points[name] for name in SHAPES_299}


def test_dict_call_form_of_tf_hub(module, images):
    outputs = module(dict(images=images), signature="image_classification", as_dict=True)
    assert np.array_equal(outputs["default"], module(images))
    assert list(outputs) == [SCOPE + name for name in SHAPES_299] + ["default"]
    assert {key: list(value.shape[1:]) for key, value in outputs.items() if key != "default"} == {
        SCOPE + name: shape for name, shape in SHAPES_299.items()
    }
    assert np.array_equal(module({"images": images}), module(images))


@pytest.mark.parametrize("engine", ["torch", "plain"])
def test_endpoints_equal_the_network_stage_by_stage(engine, images):
    module = Module(_random_network(), ModuleInfo(1001, irv2.labels()))
    if engine == "plain":
        module.engine.fused = False
    assert module.engine_name == engine
    outputs = module(images, signature="image_classification", as_dict=True)
    for name, expected in _plain_endpoints(module, images).items():
        error = np.abs(outputs[SCOPE + name] - expected).max() / np.abs(expected).max()
        assert error < 1e-5, (name, error)


def test_default_signature_gives_default_alone(module, images):
    logits = module(images)
    for signature in (None, "default"):
        outputs = module(dict(images=images), signature=signature, as_dict=True)
        assert list(outputs) == ["default"] and np.array_equal(outputs["default"], logits)


def test_named_signature_computes_end_points_once_when_first_read(module, images):
    passes = []
    hook = module.engine.network.blocks[0].register_forward_hook(lambda *args: passes.append("Mixed_5b"))
    try:
        batch = images.copy()
        outputs = module(batch, signature="image_classification", as_dict=True)
        assert passes == ["Mixed_5b"]  # default alone, on the engine
        assert list(outputs) == [*(SCOPE + name for name in SHAPES_299), "default"]  # every key, from the start
        assert np.array_equal(outputs["default"], module(images))
        batch[:] = 0.0  # the caller reuses its buffer: the end points are still those of the images passed
        passes.clear()
        mixed = outputs[SCOPE + "Mixed_6a"]
        logits = outputs[SCOPE + "Logits"]
        assert passes == ["Mixed_5b"] and len(list(outputs.values())) == 17  # one pass gave them all
    finally:
        hook.remove()
    expected = _plain_endpoints(module, images)
    assert np.abs(mixed - expected["Mixed_6a"]).max() < 1e-4 * np.abs(expected["Mixed_6a"]).max()
    np.testing.assert_allclose(logits, outputs["default"], rtol=1e-5, atol=1e-5)
    assert dict(outputs).keys() == set(outputs) and "InceptionResnetV2/Mixed_6a" in outputs


def test_torch_in_torch_out_and_gradients(module, images):
    x = torch.from_numpy(images).requires_grad_()
    outputs = module(x, signature="image_classification", as_dict=True)
    assert all(isinstance(value, torch.Tensor) for value in outputs.values())
    outputs[SCOPE + "Mixed_6a"].sum().backward()  # the plain network with autograd: a gradient reaches the input
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_narrow_call_runs_only_as_far_as_asked(module, images):
    calls = []
    hook = module.engine.network.blocks[0].register_forward_hook(lambda *args: calls.append("Mixed_5b"))
    try:
        stem = module.endpoints(images, ["Conv2d_1a_3x3"])
        assert calls == []  # the stem alone ran
        deep = module.endpoints(images, "InceptionResnetV2/Mixed_5b")
        assert calls == ["Mixed_5b"]
    finally:
        hook.remove()
    full = module(images, signature="image_classification", as_dict=True)
    assert np.array_equal(stem[SCOPE + "Conv2d_1a_3x3"], full[SCOPE + "Conv2d_1a_3x3"])
    assert np.array_equal(deep[SCOPE + "Mixed_5b"], full[SCOPE + "Mixed_5b"])
    with pytest.raises(irv2.OptionError, match=r"names: no end point \['Mixed_9z'\]"):
        module.endpoints(images, ["Mixed_9z"])


def test_endpoints_after_residual_blocks_are_not_overwritten(module, images):
    # The fused engine adds each residual sum into the block's input in place; an end point that feeds a
    # residual block (Mixed_5b, Mixed_6a, Mixed_7a) must be its own copy.
    alone = module.endpoints(images, ["Mixed_5b", "Mixed_6a", "Mixed_7a"])
    expected = _plain_endpoints(module, images)
    for name in ("Mixed_5b", "Mixed_6a", "Mixed_7a"):
        assert np.abs(alone[SCOPE + name] - expected[name]).max() < 1e-4 * np.abs(expected[name]).max()


def test_feature_vector_module_has_no_classifier_endpoints(images):
    module = Module(_random_network(0), ModuleInfo(0, None, default_signature="image_feature_vector"))
    outputs = module(dict(images=images), signature="image_feature_vector", as_dict=True)
    assert "InceptionResnetV2/Logits" not in outputs and outputs["default"].shape == (2, 1536)
    assert outputs[SCOPE + "PreLogitsFlatten"].shape == (2, 1536)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"image": np.zeros((1, 299, 299, 3), np.float32)}, r"takes one input, \{'images'.*has keys \['image'\]"),
        ({"images": np.zeros((1, 299, 299, 3)), "x": 1}, r"has keys \['images', 'x'\]"),
        (np.array([{"a": 1}]), "not numbers"),
        ("cat.jpg", "not numbers"),
        (np.zeros((1, 299, 299), np.float32), r"RGB, channels last\), got shape \(1, 299, 299\)"),
        (np.zeros((1, 299, 299, 4), np.float32), r"got shape \(1, 299, 299, 4\)"),
        (torch.zeros(1, 299, 299, 3, dtype=torch.uint8), "got uint8: divide by 255"),
    ],
)
def test_bad_calls_name_the_input(module, bad, message):
    with pytest.raises(irv2.InputError, match=message) as info:
        module(bad, signature="image_classification", as_dict=True)
    assert str(info.value).startswith("images: ")
    assert "[batch, 299, 299, 3]" in str(info.value) and "[0, 1]" in str(info.value)


def test_info_dicts(module):
    assert module.get_signature_names() == ["default", "image_classification", "image_feature_vector"]
    (images,) = module.get_input_info_dict().values()
    assert list(module.get_input_info_dict()) == ["images"]
    assert images.dtype.name == "float32" and images.get_shape().as_list() == [None, 299, 299, 3]
    classification = module.get_output_info_dict("image_classification")
    assert list(module.get_output_info_dict()) == list(module.get_output_info_dict("default")) == ["default"]
    assert classification["default"].get_shape() == [None, 1001]
    assert module.get_output_info_dict("image_feature_vector")["default"].get_shape() == [None, 1536]
    assert {key: value.get_shape().as_list()[1:] for key, value in classification.items() if key != "default"} == {
        SCOPE + name: shape for name, shape in SHAPES_299.items()
    }
    with pytest.raises(irv2.OptionError, match="no such signature"):
        module.get_output_info_dict("image_segmentation")


def test_info_dicts_follow_the_image_size():
    module = Module(_random_network(3), ModuleInfo(3, ["a", "b", "c"], image_size=160))
    outputs = module.get_output_info_dict("image_classification")
    assert module.get_input_info_dict()["images"].get_shape() == [None, 160, 160, 3]
    assert outputs["default"].get_shape() == [None, 3]
    real = module(np.zeros((1, 160, 160, 3), np.float32), signature="image_classification", as_dict=True)
    assert {key: [None, *value.shape[1:]] for key, value in real.items()} == {
        key: info.get_shape().as_list() for key, info in outputs.items()
    }


def test_variable_map_names_every_tf_slim_variable(module):
    variables = module.variable_map
    expected = slim_variables()  # the spec's 908 names and TF shapes, written independently of irv2
    assert set(variables) == set(expected)
    for name, tensor in variables.items():
        shape = expected[name]
        # PyTorch's layout: a conv's HWIO is OIHW here, a dense layer's [in, out] is [out, in].
        torch_shape = (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else tuple(reversed(shape))
        assert tuple(tensor.shape) == torch_shape, name
    weights = variables["InceptionResnetV2/Logits/Logits/biases"]
    assert weights is module.model.classif.bias  # the network's own tensor, not a copy
