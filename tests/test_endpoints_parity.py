"""Every TF-Slim end point against TensorFlow: the same weights, written by TensorFlow in every original format,
give each end point of ``module(..., as_dict=True)`` within 1e-4 relative of a TensorFlow forward pass (Keras'
InceptionResNetV2 carrying the TF-Slim weights) on real photos, on the fused engine and on the plain network,
in the inference graph and in the train graph."""

from __future__ import annotations

import numpy as np
import pytest

import irv2
from irv2.api.load import set_train_mode

TOLERANCE = 1e-4
SCOPE = "InceptionResnetV2/"
BASE = (
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "MaxPool_3a_3x3",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "MaxPool_5a_3x3",
    "Mixed_5b",
    "Mixed_6a",
    "PreAuxLogits",
    "Mixed_7a",
    "Conv2d_7b_1x1",
)
CLASSIFIER = (*BASE, "global_pool", "PreLogitsFlatten", "Logits", "Predictions")
FEATURES_ONLY = (*BASE, "global_pool", "PreLogitsFlatten")


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


def assert_endpoints_match(outputs: dict, reference: dict, names: tuple[str, ...]) -> None:
    assert set(outputs) == {"default", *(SCOPE + name for name in names)}
    errors = {}
    for name in names:
        ours = outputs[SCOPE + name]
        assert ours.shape == reference[name].shape, name
        errors[name] = relative_error(ours, reference[name])
    assert max(errors.values()) < TOLERANCE, errors


@pytest.mark.parametrize("source", ["hub_classification", "v2", "v1", "slim_tarball", "hub_tarball"])
def test_every_endpoint_matches_tensorflow(source, tf_files, tf_endpoints, photos):
    module = irv2.load(tf_files[source])
    for signature in ("image_classification", "image_feature_vector"):
        outputs = module(dict(images=photos), signature=signature, as_dict=True)
        assert_endpoints_match(outputs, tf_endpoints, CLASSIFIER)
        expected_default = tf_endpoints["Logits" if signature == "image_classification" else "PreLogitsFlatten"]
        assert relative_error(outputs["default"], expected_default) < TOLERANCE
    # The as_dict call's default is the plain call's, exactly.
    assert np.array_equal(outputs["default"], module(photos, signature="image_feature_vector"))


def test_plain_network_gives_the_same_endpoints(tf_files, tf_endpoints, photos):
    module = irv2.load(tf_files["hub_classification"], engine="plain")
    outputs = module(dict(images=photos), signature="image_classification", as_dict=True)
    assert_endpoints_match(outputs, tf_endpoints, CLASSIFIER)


def test_feature_vector_module_has_no_classifier_endpoints(tf_files, tf_endpoints, photos):
    module = irv2.load(tf_files["hub_feature_vector"])
    outputs = module(dict(images=photos), signature="image_feature_vector", as_dict=True)
    assert_endpoints_match(outputs, tf_endpoints, FEATURES_ONLY)
    assert relative_error(outputs["default"], tf_endpoints["PreLogitsFlatten"]) < TOLERANCE


def test_narrow_call_and_torch_inputs(tf_files, tf_endpoints, photos):
    import torch

    module = irv2.load(tf_files["v2"])
    some = module.endpoints(photos, names=["Mixed_6a", "InceptionResnetV2/MaxPool_3a_3x3"])
    assert list(some) == [SCOPE + "MaxPool_3a_3x3", SCOPE + "Mixed_6a"]  # network order
    for key, value in some.items():
        assert relative_error(value, tf_endpoints[key.removeprefix(SCOPE)]) < TOLERANCE
    with torch.no_grad():
        tensors = module.endpoints(torch.from_numpy(photos), names="Conv2d_7b_1x1")
    (value,) = tensors.values()
    assert isinstance(value, torch.Tensor) and value.shape == (len(photos), 8, 8, 1536)
    assert relative_error(value.numpy(), tf_endpoints["Conv2d_7b_1x1"]) < TOLERANCE


def test_train_graph_endpoints_and_aux_logits_match_tensorflow(tf_files, slim_weights, photos):
    from tf_reference import keras_endpoints, keras_reference, tf_aux_logits

    module = irv2.load(tf_files["hub_classification"], tags={"train"})
    set_train_mode(module.model, dropout_rate=0.0)  # dropout is random: off, to compare
    outputs = module(dict(images=photos), signature="image_classification", as_dict=True)
    reference = keras_endpoints(keras_reference(slim_weights), photos, training=True)
    reference["AuxLogits"] = tf_aux_logits(reference["PreAuxLogits"], slim_weights)
    assert_endpoints_match(
        {k: v for k, v in outputs.items() if k != "aux_logits"}, reference, (*CLASSIFIER, "AuxLogits")
    )
    assert np.array_equal(outputs["aux_logits"], outputs[SCOPE + "AuxLogits"])


def test_tf2_entry_points_match_tensorflow(tf_files, tf_endpoints, photos):
    """TF2's hub.load and hub.KerasLayer over the TF-written TF1 module: the signature's default, a lazily read
    end point and the Keras layer's feature vector, each against TensorFlow."""
    import torch

    import irv2.tfhub as hub

    loaded = hub.load(tf_files["hub_classification"])
    outputs = loaded.signatures["image_classification"](images=photos)
    assert relative_error(outputs["default"], tf_endpoints["Logits"]) < TOLERANCE
    assert relative_error(outputs[SCOPE + "Mixed_6a"], tf_endpoints["Mixed_6a"]) < TOLERANCE  # read lazily

    layer = hub.KerasLayer(tf_files["hub_classification"], signature="image_feature_vector", output_key="default")
    features = layer(torch.from_numpy(photos))
    assert isinstance(features, torch.Tensor)
    assert relative_error(features.numpy(), tf_endpoints["PreLogitsFlatten"]) < TOLERANCE
