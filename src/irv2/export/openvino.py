"""OpenVINO IR: a folder holding ``model.xml`` (the graph) and ``model.bin`` (the weights), as OpenVINO Model
Server loads a model version (``models/irv2/1/``) and ``openvino.Core().read_model`` reads it.

Why a folder rather than a ``.xml`` file: the IR is two files that only work as a pair, and a folder is the
one thing that can be checked whole and then renamed into place in one step (``--force`` replaces both or
neither); it is also the unit OpenVINO Model Server serves, one numbered folder per version.

The graph takes ``images`` float32 ``[batch, H, W, 3]`` (layout NHWC, values in [0, 1]) at the module's size
(any height and width, each at least 75, with ``dynamic_size``) and gives ``logits`` ``[batch, num_classes]``
and ``features`` ``[batch, 1536]``, all float32 (the weights are not compressed to float16). The metadata
(``irv2.export.export_metadata``) is in the model's ``rt_info`` under ``irv2``, each value a JSON string:
``json.loads(model.get_rt_info(["irv2", "labels"]).astype(str))``.

Run it in float32 with ``INFERENCE_PRECISION_HINT`` ``f32``: on CPUs with AMX or AVX512-BF16, OpenVINO otherwise
computes in bfloat16 (8 significant bits), silently inexact.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..model import MIN_INPUT_SIZE
from .wrapper import INPUT_NAME, ExportWrapper

__all__ = ["GRAPH_FILE", "METADATA_KEY", "WEIGHTS_FILE", "run_openvino", "write_openvino"]

GRAPH_FILE = "model.xml"
WEIGHTS_FILE = "model.bin"  # OpenVINO finds it by the graph's name
METADATA_KEY = "irv2"  # rt_info section holding the metadata


def write_openvino(
    wrapper: ExportWrapper,
    folder: Path,
    *,
    image_size: tuple[int, int],
    dynamic_size: bool,
    metadata: dict[str, Any],
) -> None:
    """Convert ``wrapper`` with OpenVINO's PyTorch front end and save it as the new folder ``folder``
    (``model.xml`` and ``model.bin``, about 220 MB for 1001 classes)."""
    import openvino as ov

    size = [ov.Dimension(MIN_INPUT_SIZE, -1)] * 2 if dynamic_size else list(image_size)
    with torch.no_grad(), warnings.catch_warnings():
        # The front end traces the wrapper: torch 2.13 deprecates tracing, and the network's only Python
        # branches (its input-size checks) become constants, which is right here.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        model = ov.convert_model(
            wrapper,
            example_input=torch.zeros(2, *image_size, 3),
            input=[ov.PartialShape([-1, *size, 3])],
        )
    # The traced graph names its tensors after PyTorch's values; consumers address them by TF-Hub's names.
    model.inputs[0].get_tensor().set_names({INPUT_NAME})
    model.inputs[0].get_node().set_layout(ov.Layout("NHWC"))
    for output, name in zip(model.outputs, wrapper.output_names, strict=True):
        output.get_tensor().set_names({name})
    for key, value in metadata.items():
        model.set_rt_info(json.dumps(value), [METADATA_KEY, key])
    folder.mkdir()
    # Float32 weights: OpenVINO's default compresses them to float16, rounding each to 11 significant bits.
    ov.save_model(model, str(folder / GRAPH_FILE), compress_to_fp16=False)


def run_openvino(folder: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """Read the IR in ``folder`` and run it on the CPU in float32 on ``images`` ``[B, H, W, 3]``:
    ``{output name: array}``."""
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(folder / GRAPH_FILE)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    results = compiled({INPUT_NAME: images})
    return {output.get_any_name(): np.array(results[output]) for output in compiled.outputs}
