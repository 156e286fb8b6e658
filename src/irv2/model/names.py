"""The network's sizes and the names of its stages and end points: plain data, no torch, so that what
only describes the network (signatures, output shapes, the CLI) can be imported without PyTorch."""

from __future__ import annotations

NUM_FEATURES = 1536
MIN_INPUT_SIZE = 75

# The network's stages in order: (TF-Slim name, attribute that computes it). The name of a stage's output;
# those in BASE_ENDPOINTS are TF-Slim end points, the rest (a Repeat, the last Block8) are not.
STAGES: tuple[tuple[str, str], ...] = (
    ("Conv2d_1a_3x3", "conv2d_1a"),
    ("Conv2d_2a_3x3", "conv2d_2a"),
    ("Conv2d_2b_3x3", "conv2d_2b"),
    ("MaxPool_3a_3x3", "maxpool_3a"),
    ("Conv2d_3b_1x1", "conv2d_3b"),
    ("Conv2d_4a_3x3", "conv2d_4a"),
    ("MaxPool_5a_3x3", "maxpool_5a"),
    ("Mixed_5b", "mixed_5b"),
    ("Repeat", "repeat"),
    ("Mixed_6a", "mixed_6a"),
    ("PreAuxLogits", "repeat_1"),
    ("Mixed_7a", "mixed_7a"),
    ("Repeat_2", "repeat_2"),
    ("Block8", "block8"),
    ("Conv2d_7b_1x1", "conv2d_7b"),
)
# TF-Slim's end points of the base network (``inception_resnet_v2_base``), in order. The blocks inside a
# Repeat are not registered (TF-Slim leaves a "TODO register intermediate endpoints"), nor is the last Block8.
BASE_ENDPOINTS: tuple[str, ...] = (
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
