"""irv2: Inception-ResNet-v2 in PyTorch, exact to the TF-Hub module and TF-Slim checkpoint.

>>> import irv2
>>> module = irv2.load("inception_resnet_v2_2016_08_30.ckpt")
>>> logits = module(irv2.load_image("cat.jpg")[None])          # [1, 1001]
>>> irv2.top_k(logits, k=3)
"""

from __future__ import annotations

# ``irv2.labels()`` and ``irv2.synsets()`` (below) shadow the labels package: it is imported (lightly) here, so that
# importing it later cannot rebind ``irv2.labels`` from the function to the package.
from . import labels as _labels_package  # noqa: F401
from ._lazy import lazy_attributes
from ._version import __version__
from .errors import (
    CheckpointError,
    CommandError,
    DatasetError,
    DiskFullError,
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

# ``irv2.evaluate(...)``, ``irv2.explain(...)``, ``irv2.export(...)`` and ``irv2.finetune(...)`` are functions that
# shadow their packages' names on ``irv2`` on purpose; the packages stay importable (``from irv2.finetune import
# FinetuneConfig``). They are bound here, eagerly, because importing a subpackage later would rebind its name on
# ``irv2`` to the package; each package's ``__init__`` is light (its own heavy parts are imported on use).
from .evaluate import evaluate
from .explain import explain
from .export import export
from .finetune import finetune

__all__ = [
    "CLASSIFICATION",
    "FEATURE_VECTOR",
    "CheckpointError",
    "CommandError",
    "DatasetError",
    "DiskFullError",
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
    "Preprocessing",
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


# Everything else resolves on first use (PEP 562): ``import irv2`` imports numpy and irv2's own light modules, not
# torch, Pillow's plugins or any engine runtime. What imports torch is listed in docs/performance.md.
__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "CLASSIFICATION": ".api",
        "FEATURE_VECTOR": ".api",
        "Module": ".api",
        "get_expected_image_size": ".api",
        "load": ".api",
        "save": ".api",
        "sample_image": ".data",
        "Prediction": ".labels",
        "imagenet_labels": ".labels",
        "imagenet_synsets": ".labels",
        "top_k": ".labels",
        "load_image": ".preprocessing",
        "Preprocessing": ".preprocessing",
    },
    __all__,
)


def labels(num_classes: int = 1001) -> list[str]:
    """ImageNet class names: 1001 with "background" at index 0 (the TF-Hub head), or 1000 without."""
    from .labels import imagenet_labels

    return imagenet_labels(num_classes)


def synsets(num_classes: int = 1001) -> list[str]:
    """WordNet synset IDs in label order (1001 with "background" first, or 1000)."""
    from .labels import imagenet_synsets

    return imagenet_synsets(num_classes)
