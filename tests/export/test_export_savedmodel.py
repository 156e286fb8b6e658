"""TensorFlow SavedModel export, read back with ``tf.saved_model.load``, Keras 3's ``TFSMLayer`` and
``hub.KerasLayer`` (slow: imports TensorFlow)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from export_support import FLOWERS, assert_matches_module, run_python

import irv2
from cli_runner import run_irv2
from irv2.export import export
from irv2.model.layers import ConvBnAct
from requires import unavailable

pytestmark = [pytest.mark.slow, pytest.mark.tensorflow]


@pytest.fixture(scope="session")
def features_export(tmp_path_factory, features_module, cli_env):
    """The feature-vector module exported by the command line as a user runs it (any size, checked): the
    folder and the command's result. One export serves the command line's test and the SavedModel's own."""
    root = tmp_path_factory.mktemp("savedmodel")
    weights = irv2.save(features_module, root / "features-module")
    out = root / "irv2_features"
    env = {key: value for key, value in cli_env.items() if key != "TF_CPP_MIN_LOG_LEVEL"}  # as a user has it
    result = run_irv2("export", "-w", weights, "-f", "savedmodel", "--dynamic-size", "-o", out, env=env)
    return out, result


@pytest.fixture(scope="session")
def features_savedmodel(features_export):
    out, result = features_export
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def loaded(imagenet_savedmodel):
    import tensorflow as tf

    return tf.saved_model.load(str(imagenet_savedmodel.path))


def test_export_reports_the_check(imagenet_savedmodel):
    assert imagenet_savedmodel.format == "savedmodel"
    assert set(imagenet_savedmodel.errors) == {"logits", "features"}
    # A faithful float32 port lands near 1e-6; 1e-5 already would point at a wrong op.
    assert all(error < 1e-5 for error in imagenet_savedmodel.errors.values()), imagenet_savedmodel.errors


def test_signatures_and_call_match_irv2(loaded, imagenet_module, images):
    assert set(loaded.signatures) == {"serving_default", "image_classification", "image_feature_vector"}
    for batch in (images[:1], images[1:4]):
        served = {name: value.numpy() for name, value in loaded.signatures["serving_default"](images=batch).items()}
        assert_matches_module(served, imagenet_module, batch)
    batch = images[1:4]
    logits = loaded.signatures["image_classification"](images=batch)
    features = loaded.signatures["image_feature_vector"](images=batch)
    assert set(logits) == {"logits"} and set(features) == {"features"}
    called = loaded(batch).numpy()  # __call__, what hub.KerasLayer calls
    assert_matches_module({"logits": called, "features": features["features"].numpy()}, imagenet_module, batch)
    np.testing.assert_array_equal(called, logits["logits"].numpy())


def test_variables_follow_tf_slim_names_and_hub_api(loaded, imagenet_module):
    convs = [m for name, m in imagenet_module.model.named_modules() if isinstance(m, ConvBnAct) and "aux" not in name]
    up_projections = 10 + 20 + 10  # one biased 1x1 conv per residual block (Block8 counted with repeat_2)
    # Per conv: kernel and beta train, the moving mean and variance do not; plus the classifier.
    assert len(loaded.trainable_variables) == 2 * len(convs) + 2 * up_projections + 2
    assert len(loaded.variables) == len(loaded.trainable_variables) + 2 * len(convs)
    names = {v.name for v in loaded.variables}
    assert "InceptionResnetV2/Conv2d_1a_3x3/weights:0" in names
    assert "InceptionResnetV2/Repeat_1/block17_20/Branch_1/Conv2d_0c_7x1/BatchNorm/moving_variance:0" in names
    assert "InceptionResnetV2/Logits/Logits/biases:0" in names
    assert list(loaded.regularization_losses) == []


def test_labels_travel_as_an_asset(loaded, imagenet_savedmodel, imagenet_module):
    labels_path = loaded.labels_file.asset_path.numpy().decode()
    with open(labels_path, encoding="utf-8") as f:
        assert f.read().splitlines() == imagenet_module.labels
    metadata = json.loads((imagenet_savedmodel.path / "assets.extra" / "irv2.json").read_text())
    assert metadata["num_classes"] == 1001 and metadata["preprocessing"]["recipe"] == "tf_slim_eval"


def test_keras3_tfsmlayer_runs_it(imagenet_savedmodel, imagenet_module, images):
    import keras

    layer = keras.layers.TFSMLayer(str(imagenet_savedmodel.path), call_endpoint="serving_default")
    outputs = {name: np.asarray(value) for name, value in layer(images[:2]).items()}
    assert_matches_module(outputs, imagenet_module, images[:2])


_KERAS_LAYER = r"""
import json, sys, types
import numpy as np

# tensorflow_hub 0.15 imports its estimator support at import time; TF 2.21 has no estimator.
fake = types.ModuleType("tensorflow_hub.estimator")
fake.LatestModuleExporter = None
fake.register_module_for_export = None
sys.modules["tensorflow_hub.estimator"] = fake

import tensorflow as tf
import tensorflow_hub as hub

path, images_file, out_file = sys.argv[1:4]
images = np.load(images_file)
frozen = hub.KerasLayer(path)
features = hub.KerasLayer(path, signature="image_feature_vector", output_key="features")
trainable = hub.KerasLayer(path, trainable=True)
with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(trainable(images[:1])))
gradients = tape.gradient(loss, trainable.trainable_weights)
np.savez(out_file, logits=frozen(images).numpy(), features=features(images).numpy())
print(json.dumps({
    "frozen_trainable": len(frozen.trainable_weights),
    "trainable": len(trainable.trainable_weights),
    "non_trainable": len(trainable.non_trainable_weights),
    "missing_gradients": sum(g is None for g in gradients),
}))
"""


def test_hub_keras_layer_loads_it(imagenet_savedmodel, loaded, imagenet_module, images, tmp_path, cli_env):
    if importlib.util.find_spec("tf_keras") is None:  # not imported here: it must load in a fresh process
        unavailable("hub.KerasLayer needs Keras 2: pip install --no-deps tf-keras==2.21.0 (`make setup` does)")
    np.save(tmp_path / "images.npy", images[:3])
    # tensorflow_hub's KerasLayer is a Keras 2 layer: TensorFlow must pick tf_keras when it is first imported.
    env = {**cli_env, "TF_USE_LEGACY_KERAS": "1"}
    result = run_python(_KERAS_LAYER, imagenet_savedmodel.path, tmp_path / "images.npy", tmp_path / "out.npz", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = json.loads(result.stdout.splitlines()[-1])
    assert counts == {
        "frozen_trainable": 0,
        "trainable": len(loaded.trainable_variables),
        "non_trainable": len(loaded.variables) - len(loaded.trainable_variables),
        "missing_gradients": 0,
    }
    outputs = dict(np.load(tmp_path / "out.npz"))
    assert_matches_module(outputs, imagenet_module, images[:3])


def test_features_only_savedmodel(features_savedmodel, features_module, images, odd_images):
    import tensorflow as tf

    features_only = tf.saved_model.load(str(features_savedmodel))
    assert set(features_only.signatures) == {"serving_default", "image_feature_vector"}
    assert not hasattr(features_only, "labels_file")
    for batch in (images[:2], odd_images):  # dynamic_size: any height and width
        served = features_only.signatures["image_feature_vector"](images=batch)
        assert_matches_module({"features": served["features"].numpy()}, features_module, batch)
        assert_matches_module({"features": features_only(batch).numpy()}, features_module, batch)


def test_fine_tuned_head_exports(tmp_path, flowers_module, images):
    import tensorflow as tf

    path = export(flowers_module, tmp_path / "flowers", format="savedmodel", verify=False).path
    restored = tf.saved_model.load(str(path))
    served = {k: v.numpy() for k, v in restored.signatures["serving_default"](images=images[:2]).items()}
    assert served["logits"].shape == (2, 5)
    assert_matches_module(served, flowers_module, images[:2])
    with open(restored.labels_file.asset_path.numpy().decode(), encoding="utf-8") as f:
        assert f.read().splitlines() == FLOWERS


def test_cli_exports_a_savedmodel_quietly(features_export):
    out, result = features_export
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{out}\n"
    # Only our summary: TensorFlow's import-time notes (absl, oneDNN) are kept off stderr.
    assert result.stderr.startswith(f"irv2: wrote {out} (savedmodel, features only); max relative error vs irv2:")
    assert result.stderr.count("\n") == 1, result.stderr
    # test_features_only_savedmodel runs what it wrote, at 299 px and at another size.
