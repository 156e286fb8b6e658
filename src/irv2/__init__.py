"""irv2: Inception-ResNet-v2 in PyTorch, exact to the TF-Hub module and TF-Slim checkpoint.

>>> import irv2
>>> module = irv2.load("inception_resnet_v2_2016_08_30.ckpt")
>>> logits = module(irv2.load_image("cat.jpg")[None])          # [1, 1001]
>>> irv2.top_k(logits, k=3)
"""

from __future__ import annotations

from ._version import __version__
from .api import CLASSIFICATION, FEATURE_VECTOR, Module, get_expected_image_size, load, save
from .data import sample_image
from .errors import (
    CheckpointError,
    CommandError,
    DatasetError,
    DownloadError,
    ExportError,
    HandleError,
    ImageError,
    InputError,
    Irv2Error,
    JobError,
    LabelMismatchError,
    LayoutError,
    MissingDependencyError,
    NotFound,
    OptionError,
    OutputExistsError,
    PayloadTooLarge,
    QueueFull,
    RequestError,
    ShuttingDown,
    WeightMismatchError,
)

# Likewise ``irv2.evaluate(module, "val/")`` (accuracy, calibration, speed); ``from irv2.evaluate import read_layout``
# still works. It imports only numpy, Pillow and irv2's own code here (scipy when a devkit meta.mat is read).
from .evaluate import evaluate

# Likewise ``irv2.explain(module, images)`` (Grad-CAM maps); ``from irv2.explain import gradcam`` still works.
from .explain import explain

# Likewise ``irv2.export(module, "model.onnx")``; onnx and TensorFlow are imported only when a format needs them.
from .export import export

# The function shadows its package's name on ``irv2`` on purpose (``irv2.finetune(...)``); the package stays
# importable as ``from irv2.finetune import FinetuneConfig``. It imports only torch-level code here.
from .finetune import finetune
from .labels import Prediction, imagenet_labels, imagenet_synsets, top_k
from .preprocessing import load_image

__all__ = [
    "CLASSIFICATION",
    "FEATURE_VECTOR",
    "CheckpointError",
    "CommandError",
    "DatasetError",
    "DownloadError",
    "ExportError",
    "HandleError",
    "ImageError",
    "InputError",
    "Irv2Error",
    "JobError",
    "LabelMismatchError",
    "LayoutError",
    "MissingDependencyError",
    "Module",
    "NotFound",
    "OptionError",
    "OutputExistsError",
    "PayloadTooLarge",
    "Prediction",
    "QueueFull",
    "RequestError",
    "ShuttingDown",
    "WeightMismatchError",
    "__version__",
    "evaluate",
    "explain",
    "export",
    "finetune",
    "get_expected_image_size",
    "labels",
    "load",
    "load_image",
    "sample_image",
    "save",
    "synsets",
    "top_k",
]


def labels(num_classes: int = 1001) -> list[str]:
    """ImageNet class names: 1001 with "background" at index 0 (the TF-Hub head), or 1000 without."""
    return imagenet_labels(num_classes)


def synsets(num_classes: int = 1001) -> list[str]:
    """WordNet synset IDs in label order (1001 with "background" first, or 1000)."""
    return imagenet_synsets(num_classes)
