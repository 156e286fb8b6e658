"""ONNX: PyTorch's ``torch.export``-based exporter, checked back with onnxruntime.

The graph takes ``images`` float32 ``[batch, 299, 299, 3]`` in [0, 1] (``[batch, height, width, 3]`` with
``dynamic_size``) and gives ``logits`` ``[batch, num_classes]`` and ``features`` ``[batch, 1536]``. What a
consumer needs besides the graph travels in the model's ``metadata_props``
(``irv2.export.export_metadata``, each value a JSON string).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from ..model import MIN_INPUT_SIZE
from .wrapper import INPUT_NAME, ExportWrapper

# torch 2.13's exporter defaults to opset 20; every operator this network needs exists in 18, which older
# runtimes load too (onnxruntime from 1.14).
OPSET = 18


def write_onnx(wrapper: ExportWrapper, path: Path, *, dynamic_size: bool, metadata: dict[str, str]) -> None:
    """Export ``wrapper`` to the single file ``path`` (weights inside, about 220 MB for 1001 classes)."""
    # A batch of two to trace with: torch.export specialises a dimension whose example size is 1.
    example = torch.zeros(2, 299, 299, 3)
    axes: dict[int, torch.export.Dim] = {0: torch.export.Dim("batch", min=1)}
    if dynamic_size:
        axes[1] = torch.export.Dim("height", min=MIN_INPUT_SIZE)
        axes[2] = torch.export.Dim("width", min=MIN_INPUT_SIZE)
    with _quiet_exporter():
        program = torch.onnx.export(
            wrapper,
            (example,),
            input_names=[INPUT_NAME],
            output_names=list(wrapper.output_names),
            opset_version=OPSET,
            dynamic_shapes={INPUT_NAME: axes},
            dynamo=True,
            verbose=False,
        )
        program.model.metadata_props.update(metadata)
        # One self-contained file: the weights (well under protobuf's 2 GB limit) stay inside the model.
        program.save(path, external_data=False)


def run_onnx(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """Run the exported model on ``images`` ``[B, H, W, 3]`` with onnxruntime (CPU): ``{output name: array}``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {INPUT_NAME: images}), strict=True))


@contextlib.contextmanager
def _quiet_exporter():
    """Keep the exporter's progress lines (printed to stdout) and its logged notes out of the user's output;
    stdout may be a pipe holding the CLI's results. Errors still raise."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            # torch.export's own deprecations (torch 2.13: pytree's LeafSpec), not the user's to act on.
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)
