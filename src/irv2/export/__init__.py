"""Export a module to deployment formats: ONNX, TorchScript, a TensorFlow SavedModel and OpenVINO IR.

>>> from irv2.export import export
>>> export("google/imagenet/inception_resnet_v2/classification/1", "irv2.onnx")   # format from the suffix

Every format takes ``images`` float32 ``[B, H, W, 3]`` in [0, 1] (channel last, as TF-Hub; 299 x 299 for the
TF-Hub weights) and gives ``logits`` ``[B, num_classes]`` and ``features`` ``[B, 1536]``. ONNX needs
``pip install 'irv2[onnx]'``, the SavedModel ``pip install 'irv2[tensorflow]'``, OpenVINO IR
``pip install 'irv2[openvino]'``; each is imported only when used. The formats are one table,
:data:`FORMATS_TABLE`.
"""

from ..errors import ExportError, MissingDependencyError, OutputExistsError
from .api import TOLERANCE, ExportResult, check_export, export, export_metadata
from .formats import FORMATS, FORMATS_TABLE, ExportFormat

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
