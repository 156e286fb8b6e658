"""irv2 against TensorFlow: the same weights, written by TensorFlow in every original format, give the
same logits and feature vectors within 1e-4 (max abs difference / max abs value) on real photos."""

import numpy as np
import pytest

import irv2

pytestmark = pytest.mark.slow

TOLERANCE = 1e-4


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


@pytest.mark.parametrize("source", ["v2", "v1", "hub_classification", "slim_tarball", "hub_tarball"])
def test_logits_and_features_match_tensorflow(source, tf_files, tf_outputs, photos):
    tf_logits, tf_features = tf_outputs
    module = irv2.load(tf_files[source])
    assert module.num_classes == 1001 and module.labels[0] == "background"
    logits = module(photos)
    features = module(photos, signature="image_feature_vector")
    assert relative_error(logits, tf_logits) < TOLERANCE
    assert relative_error(features, tf_features) < TOLERANCE
    # Sanity of the fixture itself: the photos are told apart, so agreement is not trivial.
    assert len(set(tf_logits.argmax(1))) > 1
    assert np.array_equal(logits.argmax(1), tf_logits.argmax(1))


def test_feature_vector_module_loads_features_only(tf_files, tf_outputs, photos):
    module = irv2.load(tf_files["hub_feature_vector"])
    assert module.num_classes == 0 and module.signatures == ("image_feature_vector",)
    assert relative_error(module(photos), tf_outputs[1]) < TOLERANCE
    assert module(photos, as_dict=True)["default"].shape == (len(photos), 1536)


def test_native_save_keeps_the_numbers(tf_files, tf_outputs, photos, tmp_path):
    module = irv2.load(tf_files["v1"])
    reloaded = irv2.load(irv2.save(module, tmp_path / "native"))
    assert np.array_equal(reloaded(photos), module(photos))
    assert reloaded.info.provenance["format"] == module.info.provenance["format"]
    assert relative_error(reloaded(photos), tf_outputs[0]) < TOLERANCE


def test_checkpoint_extras_are_ignored(tf_files):
    module = irv2.load(tf_files["v2"])
    assert module.info.provenance["ignored_tensors"] == ["global_step"]


def test_keras_h5_weights_match_tensorflow(slim_weights, tf_outputs, photos, tmp_path):
    # Keras' published file has 1000 classes: the TF-Slim weights with the background class dropped.
    from tf_reference import keras_reference

    logits = "InceptionResnetV2/Logits/Logits"
    weights = dict(slim_weights)
    weights[f"{logits}/weights"] = slim_weights[f"{logits}/weights"][:, 1:]
    weights[f"{logits}/biases"] = slim_weights[f"{logits}/biases"][1:]
    path = tmp_path / "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5"
    keras_reference(weights, num_classes=1000).save(path)
    module = irv2.load(path)
    assert module.num_classes == 1000 and module.labels[0] == "tench"
    assert module.info.provenance["format"] == "keras-h5"
    assert relative_error(module(photos), tf_outputs[0][:, 1:]) < TOLERANCE
    assert relative_error(module(photos, signature="image_feature_vector"), tf_outputs[1]) < TOLERANCE
    # Decoding follows the head: the same class wins under the same name in both label spaces.
    ours, theirs = irv2.top_k(module(photos), k=1), irv2.top_k(tf_outputs[0][:, 1:], k=1)
    assert [p[0].label for p in ours] == [p[0].label for p in theirs]
