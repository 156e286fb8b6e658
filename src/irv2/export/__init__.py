"""Export a module to deployment formats: ONNX, TorchScript, a TensorFlow SavedModel, OpenVINO IR, and LiteRT
(.tflite) and ExecuTorch (.pte) for phones and boards.

>>> from irv2.export import export
>>> export("google/imagenet/inception_resnet_v2/classification/1", "irv2.onnx")   # format from the suffix

Every format takes ``images`` float32 ``[B, H, W, 3]`` in [0, 1] (channel last, as TF-Hub; 299 x 299 for the
TF-Hub weights) and gives ``logits`` ``[B, num_classes]`` and ``features`` ``[B, 1536]``. ONNX needs
``pip install 'irv2[onnx]'``, the SavedModel ``pip install 'irv2[tensorflow]'``, OpenVINO IR
``pip install 'irv2[openvino]'``, LiteRT ``'irv2[litert]'`` and ExecuTorch ``'irv2[executorch]'``; each is
imported only when used. The formats are one table, :data:`FORMATS_TABLE`.
"""

from .._lazy import forwarding, lazy_attributes
from ..errors import ExportError, MissingDependencyError, OutputExistsError

__all__ = [
    "FORMATS",
    "FORMATS_TABLE",
    "TOLERANCE",
    "ExportError",
    "ExportFormat",
    "ExportResult",
    "MissingDependencyError",
    "OutputExistsError",
    "check_export",
    "export",
    "export_metadata",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "TOLERANCE": ".api",
        "ExportResult": ".api",
        "check_export": ".api",
        "export_metadata": ".api",
        "FORMATS": ".formats",
        "FORMATS_TABLE": ".formats",
        "ExportFormat": ".formats",
    },
    __all__,
)


export = forwarding(
    __name__, ".api", "export", "Export a module to ONNX, TorchScript, a SavedModel, OpenVINO IR, LiteRT or ExecuTorch"
)
