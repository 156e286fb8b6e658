"""Export a module to deployment formats: ONNX, TorchScript and a TensorFlow SavedModel.

>>> from irv2.export import export
>>> export("google/imagenet/inception_resnet_v2/classification/1", "irv2.onnx")   # format from the suffix

Every format takes ``images`` float32 ``[B, 299, 299, 3]`` in [0, 1] (channel last, as TF-Hub) and gives
``logits`` ``[B, num_classes]`` and ``features`` ``[B, 1536]``. ONNX needs ``pip install 'irv2[onnx]'``, the
SavedModel ``pip install 'irv2[tensorflow]'``; both are imported only when used.
"""

from .api import (
    FORMATS,
    TOLERANCE,
    ExportError,
    ExportResult,
    MissingDependencyError,
    OutputExistsError,
    check_export,
    export,
    export_metadata,
)

__all__ = [
    "FORMATS",
    "TOLERANCE",
    "ExportError",
    "ExportResult",
    "MissingDependencyError",
    "OutputExistsError",
    "check_export",
    "export",
    "export_metadata",
]
