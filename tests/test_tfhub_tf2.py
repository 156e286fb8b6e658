"""TF2's entry points over the TF1 modules (``hub.load``, ``hub.KerasLayer``) and the train graph's rules, as TF
kept them: what moves the BatchNorm moving averages, and switching graphs (fast: random weights, no
TensorFlow; parity with TensorFlow is in tests/test_endpoints_parity.py).

Images are two real photos at 160 px, which the modules take at a fraction of 299's cost.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import irv2
import irv2.tfhub as hub
from irv2.errors import OptionError
from irv2.preprocessing import preprocess_for_eval

MIXED_6A = "InceptionResnetV2/Mixed_6a"


@pytest.fixture(scope="module")
def plain(weights_dir) -> irv2.Module:
    return irv2.load(weights_dir)


@pytest.fixture(scope="module")
def images(photo_arrays) -> np.ndarray:
    return np.stack([preprocess_for_eval(photo_arrays[name], size=160) for name in ("chelsea", "rocket")])


def moving_averages(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: buffer.clone() for name, buffer in network.named_buffers() if "running_" in name}


def assert_same_buffers(before: dict[str, torch.Tensor], network: torch.nn.Module) -> None:
    after = moving_averages(network)
    layers = [layer for layer in network.modules() if isinstance(layer, torch.nn.BatchNorm2d)]
    assert len(after) == 2 * len(layers) > 400  # every BatchNorm's mean and variance
    changed = [name for name, value in before.items() if not torch.equal(value, after[name])]
    assert not changed, changed[:5]


def test_load_gives_signatures_as_tf2_does(weights_dir, plain, images):
    loaded = hub.load(weights_dir)
    assert list(loaded.signatures) == ["default", "image_classification", "image_feature_vector"]
    assert loaded.tags == set()
    default = loaded.signatures["default"](images=images)
    assert list(default) == ["default"] and np.array_equal(default["default"], plain(images))

    outputs = loaded.signatures["image_classification"](images=images)
    assert np.array_equal(outputs["default"], plain(images))
    expected = plain(dict(images=images), signature="image_classification", as_dict=True)
    assert list(outputs) == list(expected)
    assert np.array_equal(outputs[MIXED_6A], expected[MIXED_6A])
    features = loaded.signatures["image_feature_vector"](images)  # positional, as KerasLayer calls it
    assert np.array_equal(features["default"], plain(images, signature="image_feature_vector"))

    # The variables as TF2 lists them: every one, and the trainable ones (no moving averages), taking gradients.
    assert len(loaded.variables) == len(plain.variable_map) == 908
    moving = {id(t) for name, t in loaded.module.variable_map.items() if "moving_" in name}
    assert len(loaded.trainable_variables) == 908 - len(moving)
    assert all(v.requires_grad and id(v) not in moving for v in loaded.trainable_variables)
    logits = loaded.signatures["default"](images=torch.from_numpy(images))["default"]
    logits.sum().backward()  # what tape.gradient(loss, loaded.trainable_variables) did
    trainable = {id(v) for v in loaded.trainable_variables}
    off_the_path = [name for name, v in loaded.module.variable_map.items() if id(v) in trainable and v.grad is None]
    assert off_the_path and all(name.startswith("InceptionResnetV2/AuxLogits/") for name in off_the_path)


def test_load_refuses_what_it_cannot_do(weights_dir, images):
    loaded = hub.load(weights_dir)
    with pytest.raises(KeyError, match=r"no signature 'serving_default'.*'image_feature_vector'"):
        loaded.signatures["serving_default"]
    with pytest.raises(OptionError, match="pass them once"):
        loaded.signatures["default"](images, images=images)
    with pytest.raises(OptionError, match="takes images="):
        loaded.signatures["default"]()
    with pytest.raises(OptionError, match="LoadOptions"):
        hub.load(weights_dir, options=object())
    with pytest.raises(OptionError, match=r"tag sets set\(\)"):
        hub.load(weights_dir, tags={"serve"})


def test_train_graph_without_trainable_never_moves_the_averages(weights_dir, photo_arrays):
    """hub.Module(tags={"train"}), hub.load(tags={"train"}) and a KerasLayer with train tags normalise with batch
    statistics, and leave every moving average as loaded: TF1 moved them only through UPDATE_OPS. At 299 px,
    since a signature's dict in the train graph holds AuxLogits, which needs that size."""
    images = np.stack([preprocess_for_eval(photo_arrays[name], size=299) for name in ("chelsea", "rocket")])
    x = torch.from_numpy(images)
    frozen_module = hub.Module(weights_dir, tags={"train"})
    loaded = hub.load(weights_dir, tags={"train"})
    layer = hub.KerasLayer(weights_dir, tags={"train"}, signature="image_feature_vector")
    reference = irv2.load(weights_dir, tags={"train"})  # irv2's own train graph: batch statistics, updating
    for call, network in (
        (lambda: frozen_module(x, signature="image_feature_vector"), frozen_module.model),
        (lambda: frozen_module(images, signature="image_feature_vector"), frozen_module.model),  # numpy too
        (lambda: loaded.signatures["image_feature_vector"](images=x)["default"], loaded.module.model),
        (lambda: layer(x), layer.network),
    ):
        before = moving_averages(network)
        first, second = call(), call()
        assert_same_buffers(before, network)
        # Batch statistics normalised (the feature vector has no dropout, so the two calls agree).
        assert np.allclose(np.asarray(torch.as_tensor(first).detach()), np.asarray(torch.as_tensor(second).detach()))
        with torch.no_grad():
            batch_statistics = reference(x, signature="image_feature_vector").numpy()
        assert np.allclose(np.asarray(torch.as_tensor(first).detach()), batch_statistics, atol=1e-5)


def test_trainable_train_graph_moves_the_averages_and_switches_graphs(weights_dir, plain, images):
    module = hub.Module(weights_dir, trainable=True)
    assert module.tags == set() and not module.training
    before = moving_averages(module.model)
    module(images)
    assert_same_buffers(before, module.model)  # the inference graph reads them

    assert module.train() is module and module.tags == {"train"} and module.training
    module(torch.from_numpy(images))
    after = moving_averages(module.model)
    assert all(not torch.equal(before[name], after[name]) for name in before if "aux_logits" not in name)
    assert module.trainable_variables and all(v.requires_grad for v in module.trainable_variables)

    assert module.eval() is module and module.tags == set() and not module.training
    assert "InceptionResnetV2/AuxLogits" not in module.get_output_info_dict("image_classification")
    # Back in the inference graph, on the new averages: the engine follows the network.
    reloaded = irv2.load(weights_dir)
    reloaded.model.load_state_dict(module.model.state_dict())
    assert np.array_equal(module(images), reloaded(images))
    assert not np.allclose(module(images), plain(images), atol=1e-4)

    # A frozen module switched to training normalises with batch statistics and keeps its averages.
    frozen = hub.Module(weights_dir)
    frozen.train()
    before = moving_averages(frozen.model)
    frozen(torch.from_numpy(images))
    assert frozen.tags == {"train"} and frozen.trainable_variables == []
    assert_same_buffers(before, frozen.model)


def test_plain_module_switches_graphs(weights_dir):
    module = irv2.load(weights_dir)
    assert module.tags == set()
    irv2.finetune.set_train_mode(module.model, batch_norm_momentum=0.99, dropout_rate=0.5)
    module.eval()
    assert module.tags == set() and not module.model.training
    module.train()  # keeps the decay and dropout chosen before
    assert module.tags == {"train"} and module.model.head_drop.p == 0.5
    assert module.model.conv2d_1a.bn.momentum == pytest.approx(0.01)
    fresh = irv2.load(weights_dir).train()  # never configured: TF-Hub's defaults, as tags={"train"} gives
    assert fresh.model.conv2d_1a.bn.momentum == pytest.approx(0.003)


def test_keras_layer_takes_tf_hubs_options(weights_dir, plain, images):
    classifier = hub.KerasLayer(weights_dir)
    assert not classifier.trainable and classifier.tags == set()  # frozen: the inference graph, even in train()
    assert all(not p.requires_grad for p in classifier.parameters())
    logits = classifier(images)
    assert isinstance(logits, torch.Tensor) and np.array_equal(logits.numpy(), plain(images))

    features = hub.KerasLayer(weights_dir, signature="image_feature_vector", output_key="default")
    assert np.array_equal(features(torch.from_numpy(images)).numpy(), plain(images, signature="image_feature_vector"))
    mixed = hub.KerasLayer(weights_dir, signature="image_classification", output_key=MIXED_6A)
    assert mixed(images).shape == (2, 8, 8, 1088)
    as_dict = hub.KerasLayer(weights_dir, signature="image_classification", signature_outputs_as_dict=True)
    outputs = as_dict(dict(images=images))
    assert np.array_equal(outputs["default"].numpy(), plain(images))
    assert np.array_equal(outputs[MIXED_6A].numpy(), mixed(images).numpy())

    sized = hub.KerasLayer(weights_dir, input_shape=(299, 299, 3), output_shape=[1001])
    assert sized(images).shape == (2, 1001)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(signature="image_classification", output_key="default", signature_outputs_as_dict=True), "give one"),
        (dict(signature="serving_default"), r"signature 'serving_default': no such signature"),
        (dict(arguments={"batch_size": 8}), r"arguments \['batch_size'\].*batch_norm_momentum"),
        (dict(tags={"serve"}), r"tag sets set\(\)"),
        (dict(output_shape=[1536]), r"output_shape \(1536,\): signature 'default' gives \(1001,\)"),
        (dict(input_shape=(299, 299)), r"input_shape \(299, 299\).*\[299, 299, 3\]"),
        (dict(load_options=object()), "LoadOptions"),
    ],
)
def test_keras_layer_refuses_with_the_reason(weights_dir, options, message):
    with pytest.raises(OptionError, match=message):
        hub.KerasLayer(weights_dir, **options)


def test_keras_layer_unknown_output_key_lists_the_outputs(weights_dir, images):
    layer = hub.KerasLayer(weights_dir, signature="image_classification", output_key="logits")
    with pytest.raises(OptionError, match=r"output_key 'logits'.*'InceptionResnetV2/Logits'"):
        layer(images)


def test_keras_layer_in_sequential_trains_one_step(weights_dir, images):
    """The Keras transfer-learning classic: a frozen feature vector and a new head, then the whole fine-tuned."""
    labels = torch.tensor([1, 3])
    x = torch.from_numpy(images)
    frozen = torch.nn.Sequential(
        hub.KerasLayer(weights_dir, signature="image_feature_vector", output_key="default"), torch.nn.Linear(1536, 5)
    )
    head = frozen[1]
    trained = [p for p in frozen.parameters() if p.requires_grad]
    assert trained == [head.weight, head.bias]
    optimizer = torch.optim.SGD(trained, lr=0.1)
    before = head.weight.detach().clone()
    torch.nn.functional.cross_entropy(frozen(x), labels).backward()
    optimizer.step()
    assert not torch.equal(head.weight, before)

    tuned = torch.nn.Sequential(
        hub.KerasLayer(
            weights_dir,
            trainable=True,
            signature="image_feature_vector",
            arguments=dict(batch_norm_momentum=0.99),
        ),
        torch.nn.Linear(1536, 5),
    )
    layer = tuned[0]
    assert layer.tags == {"train"}  # nn.Module starts in training; trainable: the train graph
    assert layer.network.conv2d_1a.bn.momentum == pytest.approx(0.01)
    weights = layer.module.variable_map["InceptionResnetV2/Conv2d_1a_3x3/weights"]
    before_weights = weights.detach().clone()
    before_averages = moving_averages(layer.network)
    optimizer = torch.optim.SGD([p for p in tuned.parameters() if p.requires_grad], lr=0.1)
    torch.nn.functional.cross_entropy(tuned(x), labels).backward()
    optimizer.step()
    assert not torch.equal(weights, before_weights)
    assert not torch.equal(before_averages["conv2d_1a.bn.running_mean"], layer.network.conv2d_1a.bn.running_mean)
    assert layer.trainable_weights and not any("moving" in str(t) for t in layer.trainable_weights)

    tuned.eval()
    assert layer.tags == set() and not layer.network.training
    with torch.no_grad():
        eval_features = layer(x)
    assert torch.equal(eval_features, layer(x))  # the inference graph: no dropout, the moving averages
