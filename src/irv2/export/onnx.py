"""ONNX: PyTorch's ``torch.export``-based exporter, checked back with onnxruntime.

The graph takes ``images`` float32 ``[batch, H, W, 3]`` in [0, 1] at the module's size (any height and width
with ``dynamic_size``) and gives ``logits`` ``[batch, num_classes]`` and ``features`` ``[batch, 1536]``. What a
consumer needs besides the graph travels in the model's ``metadata_props``
(``irv2.export.export_metadata``, each value a JSON string).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..engine.onnx_graph import OPSET
from ..engine.onnx_graph import write_onnx as _write_graph
from ..model import MIN_INPUT_SIZE
from .wrapper import INPUT_NAME, ExportWrapper

__all__ = ["OPSET", "run_onnx", "write_onnx"]


def write_onnx(
    wrapper: ExportWrapper, path: Path, *, image_size: tuple[int, int], dynamic_size: bool, metadata: dict[str, str]
) -> None:
    """Export ``wrapper`` to the single file ``path`` (weights inside, about 220 MB for 1001 classes)."""
    axes: dict[int, torch.export.Dim] = {0: torch.export.Dim("batch", min=1)}
    if dynamic_size:
        axes[1] = torch.export.Dim("height", min=MIN_INPUT_SIZE)
        axes[2] = torch.export.Dim("width", min=MIN_INPUT_SIZE)
    _write_graph(
        wrapper,
        path,
        example=torch.zeros(2, *image_size, 3),
        input_name=INPUT_NAME,
        output_names=wrapper.output_names,
        dynamic_axes=axes,
        metadata=metadata,
    )


def run_onnx(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """Run the exported model on ``images`` ``[B, H, W, 3]`` with onnxruntime (CPU): ``{output name: array}``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {INPUT_NAME: images}), strict=True))
