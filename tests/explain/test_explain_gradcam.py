"""Grad-CAM against the formula in numpy: CAM for a linear head (TF-Hub's, a fine-tuned one), the chain rule
written out for a nonlinear head. The activations are ``module.endpoints``'; everything after is recomputed here."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from torch import nn

import irv2
from irv2.explain import gradcam, gradcam_top_k


def _normalised(cam: np.ndarray) -> np.ndarray:
    peak = cam.max()
    return cam / peak if peak > 0 else cam


def _cam(activations: np.ndarray, channel_weights: np.ndarray) -> np.ndarray:
    """ReLU(sum_k w_k A_k) over one image's ``[h, w, C]`` activations, divided by its maximum."""
    return _normalised(np.maximum(activations @ channel_weights, 0.0))


def _linear_head(module) -> tuple[np.ndarray, np.ndarray]:
    return module.model.classif.weight.detach().numpy(), module.model.classif.bias.detach().numpy()


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_explain_is_cam_of_each_top_class(imagenet_module, images, activations):
    weights, bias = _linear_head(imagenet_module)
    logits = activations.mean(axis=(1, 2)) @ weights.T + bias
    top = logits.argmax(axis=1)

    explanation = gradcam(imagenet_module, images)
    assert explanation.targets == top.tolist()
    assert explanation.labels == [irv2.labels()[i] for i in top]
    np.testing.assert_allclose(explanation.scores, _softmax(logits)[np.arange(len(top)), top], rtol=1e-4)
    assert explanation.maps.dtype == np.float32 and explanation.maps.shape == (2, 8, 8)
    expected = np.stack([_cam(activations[b], weights[t]) for b, t in enumerate(top)])
    np.testing.assert_allclose(explanation.maps, expected, atol=1e-5)
    np.testing.assert_array_equal(irv2.explain(imagenet_module, images), explanation.maps)
    # The map picks out where the class is seen, not a constant: an honest check that would catch a bug
    # that flattened or transposed the maps.
    assert all(len(np.unique(np.round(m, 4))) > 8 for m in explanation.maps)


def test_targets_one_per_image_by_index_and_label(imagenet_module, images, activations):
    weights, _ = _linear_head(imagenet_module)
    tabby = irv2.labels().index("tabby")
    explanation = gradcam(imagenet_module, images, target=[np.int64(7), "tabby"])
    assert explanation.targets == [7, tabby]
    assert explanation.labels == [irv2.labels()[7], "tabby"]
    expected = np.stack([_cam(activations[0], weights[7]), _cam(activations[1], weights[tabby])])
    np.testing.assert_allclose(explanation.maps, expected, atol=1e-5)
    # One class for all images: by label (in any case), by index, by a 0-d tensor.
    for target in ("Tabby", tabby, torch.tensor(tabby)):
        same = gradcam(imagenet_module, images, target=target)
        assert same.targets == [tabby, tabby]
        np.testing.assert_allclose(same.maps[1], expected[1], atol=1e-5)


def test_top_k_explains_each_rank(imagenet_module, images, activations):
    weights, bias = _linear_head(imagenet_module)
    logits = activations.mean(axis=(1, 2)) @ weights.T + bias
    ranked = np.argsort(-logits, axis=1)[:, :3]
    explanations = gradcam_top_k(imagenet_module, images, 3)
    assert len(explanations) == 3
    for rank, explanation in enumerate(explanations):
        assert explanation.targets == ranked[:, rank].tolist()
        expected = np.stack([_cam(activations[b], weights[t]) for b, t in enumerate(ranked[:, rank])])
        np.testing.assert_allclose(explanation.maps, expected, atol=1e-5)
    scores = np.array([explanation.scores for explanation in explanations]).T  # [images, ranks]
    np.testing.assert_allclose(scores, np.take_along_axis(_softmax(logits), ranked, axis=1), rtol=1e-4)


def test_tensors_in_give_tensors_out_in_any_grad_mode(imagenet_module, images):
    expected = irv2.explain(imagenet_module, images)
    batch = torch.from_numpy(images)
    for mode in (torch.enable_grad, torch.no_grad, torch.inference_mode):
        with mode():
            maps = irv2.explain(imagenet_module, batch)
        assert isinstance(maps, torch.Tensor) and maps.dtype == torch.float32 and not maps.requires_grad
        np.testing.assert_allclose(maps.numpy(), expected, atol=1e-6)


def test_train_mode_module_is_explained_in_eval_and_left_training(imagenet_module, images):
    expected = irv2.explain(imagenet_module, images)
    imagenet_module.model.train()
    try:
        maps = irv2.explain(imagenet_module, images)
        assert all(layer.training for layer in imagenet_module.model.modules())
    finally:
        imagenet_module.model.eval()
    np.testing.assert_allclose(maps, expected, atol=1e-5)  # no dropout, no batch statistics


@contextlib.contextmanager
def _head(module, head: nn.Module, labels: list[str]):
    """``module`` with ``head`` as its classifier for ``labels`` (a fine-tuned module), then as it was."""
    before = module.model.classif, module.model.num_classes, module.info.num_classes, module.info.labels
    module.model.classif = head
    module.model.num_classes = module.info.num_classes = len(labels)
    module.info.labels = labels
    try:
        yield module
    finally:
        module.model.classif, module.model.num_classes, module.info.num_classes, module.info.labels = before


def test_fine_tuned_linear_head_is_cam(imagenet_module, images, activations):
    torch.manual_seed(3)
    labels = ["ant", "bee", "cicada"]
    with _head(imagenet_module, nn.Linear(1536, 3), labels) as module:
        weights, bias = _linear_head(module)
        logits = activations.mean(axis=(1, 2)) @ weights.T + bias
        top = logits.argmax(axis=1)
        explanation = gradcam(module, images)
        bee = gradcam(module, images, target="bee")
    assert explanation.targets == top.tolist()
    assert explanation.labels == [labels[t] for t in top]
    np.testing.assert_allclose(explanation.scores, _softmax(logits)[np.arange(2), top], rtol=1e-4)
    np.testing.assert_allclose(
        explanation.maps, np.stack([_cam(activations[b], weights[t]) for b, t in enumerate(top)]), atol=1e-5
    )
    assert bee.targets == [1, 1] and bee.labels == ["bee", "bee"]
    np.testing.assert_allclose(bee.maps, np.stack([_cam(a, weights[1]) for a in activations]), atol=1e-5)


def test_nonlinear_head_follows_the_chain_rule(imagenet_module, images, activations):
    torch.manual_seed(4)
    head = nn.Sequential(nn.Linear(1536, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3))
    head.train()  # dropout on: the explanation must switch it off, and leave the head training
    w1, b1 = head[0].weight.detach().numpy(), head[0].bias.detach().numpy()
    w2, b2 = head[3].weight.detach().numpy(), head[3].bias.detach().numpy()
    hidden = activations.mean(axis=(1, 2)) @ w1.T + b1
    logits = np.maximum(hidden, 0.0) @ w2.T + b2
    top = logits.argmax(axis=1)
    h, w = activations.shape[1:3]
    # d logit_t / d A[i, j, :] = W1^T (relu'(hidden) * W2[t]) / (h w), the same at every position.
    gradients = [w1.T @ ((hidden[b] > 0) * w2[t]) / (h * w) for b, t in enumerate(top)]

    with _head(imagenet_module, head, ["ant", "bee", "cicada"]) as module:
        explanation = gradcam(module, images)
    assert head.training and head[2].training
    assert explanation.targets == top.tolist()
    expected = np.stack([_cam(activations[b], g) for b, g in enumerate(gradients)])
    np.testing.assert_allclose(explanation.maps, expected, atol=1e-5)
    assert explanation.maps.min() >= 0 and np.allclose(explanation.maps.max(axis=(1, 2)), 1.0)
    # Not the CAM of the head's first layer alone: the ReLU between the layers matters.
    first_layer_cam = np.stack([_cam(activations[b], w1.T @ w2[t]) for b, t in enumerate(top)])
    assert np.abs(explanation.maps - first_layer_cam).max() > 1e-3


def test_a_class_with_no_positive_evidence_gets_an_all_zero_map(imagenet_module, images, activations):
    torch.manual_seed(5)
    head = nn.Linear(1536, 2)
    with torch.no_grad():
        head.weight[0] = -head.weight[0].abs()
    assert activations.min() >= 0  # after a ReLU: every channel votes against class 0
    with _head(imagenet_module, head, ["never", "other"]) as module:
        maps = irv2.explain(module, images, target=0)
    assert not np.isnan(maps).any()
    np.testing.assert_array_equal(maps, np.zeros_like(maps))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_explain_on_cuda_matches_cpu(weights_dir, images):
    expected = irv2.explain(irv2.load(weights_dir), images)
    module = irv2.load(weights_dir, device="cuda")
    np.testing.assert_allclose(irv2.explain(module, images), expected, atol=1e-4)
    maps = irv2.explain(module, torch.from_numpy(images).cuda())
    assert maps.device.type == "cuda"
