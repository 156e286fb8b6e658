"""ONNX: the graph written by irv2's own builder (``irv2.engine.onnx_builder``), checked back with onnxruntime.

The graph takes ``images`` float32 ``[batch, H, W, 3]`` in [0, 1] at the module's size (any height and width
with ``dynamic_size``) and gives ``logits`` ``[batch, num_classes]`` and ``features`` ``[batch, 1536]``. What a
consumer needs besides the graph travels in the model's ``metadata_props``
(``irv2.export.export_metadata``, each value a JSON string).

Why the builder rather than torch's ``torch.export``-based exporter, which this used before: the exporter
traces the wrapper, 50 s for this network with ``dynamic_size`` on a 2-core CPU, where the builder writes the
same function from the fused weights in 1.4 s (``benchmarks/onnx_conversion.py``, ways ``export-dynamo`` and
``export-builder``). ``irv2.export`` still reads the file back and compares it with the module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.io_names import OPSET
from .wrapper import INPUT_NAME, ExportWrapper

__all__ = ["OPSET", "run_onnx", "write_onnx"]


def write_onnx(
    wrapper: ExportWrapper, path: Path, *, image_size: tuple[int, int], dynamic_size: bool, metadata: dict[str, str]
) -> None:
    """Export ``wrapper`` to the single file ``path`` (weights inside, about 220 MB for 1001 classes)."""
    from ..engine.onnx_builder import EXPORT, write_network_onnx

    write_network_onnx(wrapper.model, path, image_size, interface=EXPORT, dynamic_size=dynamic_size, metadata=metadata)


def run_onnx(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """Run the exported model on ``images`` ``[B, H, W, 3]`` with onnxruntime (CPU): ``{output name: array}``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {INPUT_NAME: images}), strict=True))
