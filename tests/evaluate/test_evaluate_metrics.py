"""The scores from predictions and labels, on numbers small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

import irv2
from irv2.evaluate.classes import class_space
from irv2.evaluate.metrics import (
    accuracy_of,
    agreement,
    confusion,
    hits,
    kl_divergence,
    log_softmax,
    per_class,
    reliability,
    worst_classes,
)


def test_top1_and_top5_count_every_output_background_included():
    # Image 0 is labelled 3 and the head's first choice is 0 ("background" in a 1001-class head): an error.
    top_index = np.array([[0, 3, 7, 8, 9], [3, 1, 2, 4, 5], [1, 2, 4, 5, 6]])
    targets = np.array([[3], [3], [3]])
    top1, top5 = hits(top_index, targets)
    assert top1.tolist() == [False, True, False] and top5.tolist() == [True, True, False]
    probabilities = np.full((3, 5), 0.1, np.float32)
    scores = accuracy_of(top_index, probabilities, targets, np.array([True, True, False]))  # the last unreadable
    assert (scores["top1"], scores["top5"], scores["images"]) == (0.5, 1.0, 2)


def test_an_image_with_several_right_labels_hits_when_any_is_predicted():
    # ReaL: image 0 is right as 3 or 7 (its top-1 is 7); image 1 as 6 alone (6th: no hit); image 2 as 9 (5th).
    top_index = np.array([[7, 3, 1, 2, 4], [3, 1, 2, 4, 5], [1, 2, 4, 5, 9]])
    targets = np.array([[3, 7], [6, -1], [9, -1]])
    top1, top5 = hits(top_index, targets)
    assert top1.tolist() == [True, False, False] and top5.tolist() == [True, False, True]
    assert hits(np.array([[-1, -1]]), np.array([[-1, -1]]))[1].tolist() == [False]  # padding never matches
    space = class_space(10, [str(i) for i in range(10)])
    classes = per_class(targets, top_index, space)
    assert {key: c["images"] for key, c in classes.items()} == {"3": 1, "6": 1, "7": 1, "9": 1}
    assert classes["3"]["top1"] == 1.0 and classes["9"]["top1"] == 0.0 and classes["9"]["top5"] == 1.0
    assert confusion(targets, top_index[:, 0], space) is None  # several labels an image: no single truth


def test_kl_divergence_by_hand_in_its_direction():
    # p = (0.9, 0.1) the reference, q = (0.5, 0.5): KL(p || q) = 0.9 ln 1.8 + 0.1 ln 0.2, KL(q || p) differs.
    p, q = np.log([[0.9, 0.1]]), np.log([[0.5, 0.5]])
    assert kl_divergence(p, q)[0] == pytest.approx(0.9 * np.log(1.8) + 0.1 * np.log(0.2), abs=1e-12)
    assert kl_divergence(q, p)[0] == pytest.approx(0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(5.0), abs=1e-12)
    assert abs(kl_divergence(p, q)[0] - kl_divergence(q, p)[0]) > 0.1
    logits = np.array([[2.0, 0.0, -1.0]])
    assert np.exp(log_softmax(logits)).tolist()[0] == pytest.approx(np.exp(logits[0]) / np.exp(logits[0]).sum())


def test_expected_calibration_error_by_hand():
    confidence = np.array([0.05, 0.95, 0.95, 0.55, 0.6])
    correct = np.array([False, True, False, True, True])
    ece, bins = reliability(confidence, correct, bins=10)
    # Bins (0.0, 0.1]: 1 image, accuracy 0, confidence 0.05; (0.5, 0.6]: 2 images, accuracy 1, confidence 0.575;
    # (0.9, 1.0]: 2 images, accuracy 0.5, confidence 0.95.
    assert ece == pytest.approx(1 / 5 * 0.05 + 2 / 5 * 0.425 + 2 / 5 * 0.45)
    assert [b["images"] for b in bins] == [1, 0, 0, 0, 0, 2, 0, 0, 0, 2]
    assert bins[5] == {"lower": 0.5, "upper": 0.6, "images": 2, "accuracy": 1.0, "confidence": pytest.approx(0.575)}
    assert bins[1]["accuracy"] is None and reliability(np.array([]), np.array([], bool)) == (None, [])
    assert reliability(np.array([0.0, 1.0]), np.array([False, True]), bins=4)[1][0]["images"] == 1  # 0 in the first


def test_agreement_and_kl():
    assert agreement(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4]), np.array([0.0, 0.1, 0.3, 0.0])) == {
        "top1": 0.75,
        "mean_kl": pytest.approx(0.1),
    }
    assert agreement(np.array([]), np.array([]), np.array([])) == {"top1": None, "mean_kl": None}


def test_class_spaces_match_imagenet_heads_by_synset_and_others_by_name():
    for width in (1001, 1000):
        space = class_space(width, irv2.labels(width))
        assert space.imagenet and space.keys == irv2.synsets(width)
        assert space.targets([("n01440764",), ("n15075141",)], source="s", weights="w").tolist() == [
            [width - 1000],
            [width - 1],
        ]
    custom = class_space(3, ["cat", "dog", "n01440764"])
    targets = custom.targets([("dog",), ("n01440764", "cat"), ()], source="s", weights="w")
    assert not custom.imagenet and targets.tolist() == [[1, -1], [2, 0], [-1, -1]]
    assert class_space(2, None).keys == ["0", "1"]


def test_per_class_worst_classes_and_confusion():
    space = class_space(3, ["cat", "dog", "fox"])
    targets = np.array([[0], [0], [1], [1], [1], [2]])
    top_index = np.array([[0, 1, 2], [1, 0, 2], [1, 0, 2], [0, 1, 2], [2, 1, 0], [2, 0, 1]])
    classes = per_class(targets, top_index, space)
    assert classes == {
        "cat": {"name": "cat", "images": 2, "top1": 0.5, "top5": 1.0},
        "dog": {"name": "dog", "images": 3, "top1": pytest.approx(1 / 3), "top5": 1.0},
        "fox": {"name": "fox", "images": 1, "top1": 1.0, "top5": 1.0},
    }
    paths = [f"{i}.jpg" for i in range(6)]
    worst = worst_classes(classes, targets, top_index, paths, space, count=2, examples=1)
    assert [w["class"] for w in worst] == ["dog", "cat"]
    assert worst[0]["examples"] == [{"path": "3.jpg", "predicted": "cat", "predicted_name": "cat"}]
    names, matrix = confusion(targets, top_index[:, 0], space)
    assert names == ["cat", "dog", "fox"]
    assert matrix.tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 0]]
    assert confusion(np.array([[0], [1], [2]]), np.array([0, 1, 1]), space, limit=2) is None
    # Predictions outside the classes that label images go to the last column.
    assert confusion(np.array([[0], [0]]), np.array([2, 0]), space)[1].tolist() == [[1, 1]]
