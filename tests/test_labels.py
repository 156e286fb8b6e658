"""Labels as package data, and a top-k decoder that cannot be off by one between 1001 and 1000 classes."""

import numpy as np
import pytest

import irv2


def test_labels_1001_and_1000():
    labels = irv2.labels()
    assert len(labels) == 1001 and labels[0] == "background" and labels[1] == "tench"
    assert labels[-1] == "toilet tissue"
    assert irv2.labels(1000) == labels[1:]
    synsets = irv2.synsets()
    assert synsets[1] == "n01440764" and len(set(synsets[1:])) == 1000
    # Names are not unique: never map a name back to an index.
    assert labels[135] == labels[518] == "crane"


@pytest.mark.parametrize("num_classes", [1001, 1000])
def test_top_k_follows_the_head_width(num_classes):
    logits = np.zeros((2, num_classes), np.float32)
    goldfish = irv2.labels(num_classes).index("goldfish")
    logits[0, goldfish] = 10.0
    logits[1, goldfish + 1] = 10.0  # great white shark
    first, second = irv2.top_k(logits, k=3)
    assert first[0].label == "goldfish" and first[0].index == goldfish
    assert second[0].label == "great white shark"
    assert first[0].score == pytest.approx(np.exp(10) / (np.exp(10) + num_classes - 1), rel=1e-5)
    assert len(first) == 3 and first[0].score > first[1].score >= first[2].score


def test_top_k_needs_labels_for_other_heads():
    with pytest.raises(ValueError, match="pass labels"):
        irv2.top_k(np.zeros((1, 5)))
    (only,) = irv2.top_k(np.array([0.0, 3.0, 1.0]), k=1, labels=["a", "b", "c"])
    assert only[0].label == "b"
    with pytest.raises(ValueError, match="2 labels given for a 3-class head"):
        irv2.top_k(np.zeros((1, 3)), labels=["a", "b"])
