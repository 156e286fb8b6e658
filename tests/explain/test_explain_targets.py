"""Which class to explain: every wrong ``target`` is an OptionError naming the argument and saying what to pass,
raised before the network runs."""

from __future__ import annotations

import numpy as np
import pytest

import irv2
from irv2.explain import gradcam, gradcam_top_k

# Not images at all: a target error must come before the network would look at them.
NOT_RUN = object()


def test_a_label_two_classes_share_must_be_given_by_index(imagenet_module):
    cranes = [i for i, label in enumerate(irv2.labels()) if label == "crane"]
    assert len(cranes) == 2  # ImageNet's bird and machine
    with pytest.raises(irv2.OptionError, match=r"^target 'crane'") as caught:
        gradcam(imagenet_module, NOT_RUN, target="crane")
    message = str(caught.value)
    assert f"{cranes[0]}, {cranes[1]}" in message and "pass one of these indices" in message


def test_an_unknown_label_suggests_close_ones(imagenet_module):
    with pytest.raises(irv2.OptionError, match=r"^target 'tabbby': no such label; did you mean 'tabby'"):
        gradcam(imagenet_module, NOT_RUN, target="tabbby")
    with pytest.raises(irv2.OptionError, match=r"^target 'qwxz': no such label among the module's 1001 labels"):
        gradcam(imagenet_module, NOT_RUN, target="qwxz")


@pytest.mark.parametrize("index", [1001, -1, np.int64(5000)])
def test_an_index_out_of_range(imagenet_module, index):
    with pytest.raises(irv2.OptionError, match=rf"^target {int(index)}: out of range; .* 1001 classes \(0 to 1000\)"):
        gradcam(imagenet_module, NOT_RUN, target=index)


@pytest.mark.parametrize("target", [True, 2.5, {"class": 3}])
def test_a_target_of_another_kind(imagenet_module, target):
    with pytest.raises(irv2.OptionError, match=r"^target"):
        gradcam(imagenet_module, NOT_RUN, target=target)


def test_one_bad_target_in_a_sequence(imagenet_module):
    with pytest.raises(irv2.OptionError, match=r"^target 'crane'"):
        gradcam(imagenet_module, NOT_RUN, target=[3, "crane"])


def test_one_target_per_image(imagenet_module, images):
    with pytest.raises(irv2.OptionError, match=r"^target: 3 targets for 2 images"):
        gradcam(imagenet_module, images, target=[1, 2, 3])


def test_a_module_without_labels_takes_indices_only(imagenet_module):
    labels = imagenet_module.info.labels
    imagenet_module.info.labels = None
    try:
        with pytest.raises(irv2.OptionError, match=r"^target 'tabby': this module has no labels; pass a class index"):
            gradcam(imagenet_module, NOT_RUN, target="tabby")
    finally:
        imagenet_module.info.labels = labels


@pytest.mark.parametrize("k", [0, 1002])
def test_top_k_within_the_classes(imagenet_module, k):
    with pytest.raises(irv2.OptionError, match=r"^k must be a whole number from 1 to 1001"):
        gradcam_top_k(imagenet_module, NOT_RUN, k)


def test_a_feature_vector_module_has_nothing_to_explain(feature_module):
    for call in (
        lambda: irv2.explain(feature_module, NOT_RUN),
        lambda: gradcam(feature_module, NOT_RUN, target=0),
        lambda: gradcam_top_k(feature_module, NOT_RUN, 1),
    ):
        with pytest.raises(irv2.OptionError, match=r"^module: a feature-vector module has no classifier") as caught:
            call()
        assert "classification module" in str(caught.value)


def test_explain_is_exported_as_a_function():
    assert callable(irv2.explain) and "explain" in irv2.__all__
    from irv2.explain import Explanation

    assert Explanation.__dataclass_params__.frozen
