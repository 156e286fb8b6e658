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
from pathlib import Path
from typing import Any

import numpy as np

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
    """Convert ``wrapper`` to OpenVINO and save it as the new folder ``folder`` (``model.xml`` and
    ``model.bin``, about 220 MB for 1001 classes).

    OpenVINO reads the export's ONNX graph as irv2's builder writes it (``irv2.engine.onnx_builder``, handed
    over as bytes) instead of tracing ``wrapper`` with its PyTorch front end: 1.2 s against 9.0 s on 2 cores
    for the same function (benchmarks/openvino_conversion.py, docs/openvino_conversion_cpu.json)."""
    import openvino as ov

    from ..engine.onnx_builder import EXPORT, network_onnx

    # One conv per branch opening (merge=False), as the traced IR had them: the same graph as before for
    # whoever deploys it, and the one the OpenVINO engine runs.
    graph = network_onnx(wrapper.model, image_size, interface=EXPORT, dynamic_size=dynamic_size, merge=False)
    model = ov.Core().read_model(graph.SerializeToString())
    del graph  # 220 MB, copied into the model's constants
    # ONNX cannot say that height and width are at least 75; OpenVINO's shape can, and refuses smaller images.
    size = [ov.Dimension(MIN_INPUT_SIZE, -1)] * 2 if dynamic_size else list(image_size)
    model.reshape(ov.PartialShape([-1, *size, 3]))
    # Consumers address exactly TF-Hub's names: set them rather than rely on what a front end keeps.
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
