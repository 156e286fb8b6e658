"""Grad-CAM of the TensorFlow-written weights against CAM from TensorFlow's own activations.

For TF-Hub's head (a global mean, then a dense layer) Grad-CAM of class t is CAM, ReLU(A . W[:, t]), up to a
positive factor, so after normalising: A is Keras' ``conv_7b_ac`` output for the same weights, W the TF-Slim
``Logits/Logits/weights`` [1536, 1001].
"""

from __future__ import annotations

import numpy as np
import pytest

import irv2
from irv2.explain import gradcam

LOGITS_WEIGHTS = "InceptionResnetV2/Logits/Logits/weights"


def _tf_cam(activations: np.ndarray, weights: np.ndarray, targets) -> np.ndarray:
    """CAM per image from TensorFlow's ``[B, 8, 8, 1536]`` activations, each divided by its maximum."""
    maps = np.stack(
        [np.maximum(a.astype(np.float64) @ weights[:, t], 0.0) for a, t in zip(activations, targets, strict=True)]
    )
    peaks = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0)


@pytest.fixture(scope="module")
def tf_module(tf_files):
    return irv2.load(tf_files["v2"])


@pytest.mark.slow
def test_explain_matches_tensorflow_cam_of_tensorflows_top_class(tf_module, photos, tf_endpoints, slim_weights):
    tf_top = tf_endpoints["Logits"].argmax(axis=1)
    expected = _tf_cam(tf_endpoints["Conv2d_7b_1x1"], slim_weights[LOGITS_WEIGHTS], tf_top)
    explanation = gradcam(tf_module, photos)
    assert explanation.targets == tf_top.tolist()
    probabilities = tf_endpoints["Predictions"][np.arange(len(tf_top)), tf_top]
    np.testing.assert_allclose(explanation.scores, probabilities, atol=1e-4)
    maps = irv2.explain(tf_module, photos)
    assert maps.shape == (len(photos), 8, 8) and maps.dtype == np.float32
    assert np.abs(maps - expected).max() < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tabby", 949])
def test_explain_a_named_class_matches_tensorflow(tf_module, photos, tf_endpoints, slim_weights, target):
    index = irv2.labels().index(target) if isinstance(target, str) else target
    expected = _tf_cam(tf_endpoints["Conv2d_7b_1x1"], slim_weights[LOGITS_WEIGHTS], [index] * len(photos))
    maps = irv2.explain(tf_module, photos, target=target)
    assert np.abs(maps - expected).max() < 1e-3
