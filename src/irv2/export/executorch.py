"""ExecuTorch: one ``.pte`` program lowered to the XNNPACK backend, read back with ``executorch.runtime``.

The program's ``forward`` method takes ``images`` float32 ``[batch, H, W, 3]`` (NHWC, values in [0, 1], the
module's size; batch 1 to :data:`MAX_BATCH`) and returns ``(logits [batch, num_classes], features
[batch, 1536])``, or ``(features,)`` for a feature-vector module. ExecuTorch methods have positional inputs and
outputs, not names: the order is in the program's ``irv2`` constant method, a JSON document with the rest of
the metadata (labels, the preprocessing recipe, the size), which :func:`read_executorch_metadata` reads.

How it is made: ``torch.export`` of the export wrapper (the same function every format holds, its BatchNorms
folded into the convs), then
``to_edge_transform_and_lower`` with the XNNPACK partitioner, which takes every convolution, pool, add and
matmul, so the whole network runs in XNNPACK's kernels on ARM64 and x86 alike.

int8 (``calibration`` images given): PyTorch 2 export quantization with XNNPACK's quantizer, weights
symmetric per channel and activations per tensor from ranges measured on the calibration images; the input
and outputs stay float32.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .wrapper import ExportWrapper

__all__ = ["MAX_BATCH", "METADATA_METHOD", "read_executorch_metadata", "run_executorch", "write_executorch"]

METADATA_METHOD = "irv2"  # a constant method returning the metadata JSON's UTF-8 bytes as a uint8 tensor
# torch.export needs a bound on the batch axis; 64 images of 299 x 299 is 68 MB of input, more than a phone
# or board runs at once.
MAX_BATCH = 64


def write_executorch(
    wrapper: ExportWrapper,
    path: Path,
    *,
    image_size: tuple[int, int],
    metadata: dict[str, Any],
    calibration: np.ndarray | None = None,
) -> None:
    """Lower ``wrapper`` to XNNPACK and write the program to ``path``: float32, or int8 when ``calibration``
    images (``[N, H, W, 3]`` in [0, 1]) are given."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    example = (torch.zeros(2, *image_size, 3),)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    dynamic = ({0: batch},)
    with warnings.catch_warnings():
        # torch 2.13's pytree warns, on each copy of the exported graph, about an API torch.export itself still
        # uses; nothing for the user to act on.
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
        network: torch.nn.Module = _folded(wrapper)
        if calibration is not None:
            network = _quantized(network, example, dynamic, calibration)
        program = torch.export.export(network, example, dynamic_shapes=dynamic)
        document = json.dumps({**metadata, "output_names": list(wrapper.output_names)}).encode("utf-8")
        lowered = to_edge_transform_and_lower(
            program,
            partitioner=[XnnpackPartitioner()],
            # A constant method returns a tensor, not bytes: the JSON's UTF-8 bytes as uint8.
            constant_methods={METADATA_METHOD: torch.frombuffer(bytearray(document), dtype=torch.uint8)},
        ).to_executorch()
    with open(path, "wb") as f:
        lowered.write_to_file(f)


def _folded(wrapper: ExportWrapper) -> ExportWrapper:
    """The same function with each BatchNorm folded into its conv (``irv2.engine.fused_network``): 589 graph
    nodes instead of 826, which halves the lowering time (28 s against 55 s on 2 cores), within 2e-6 of the
    plain network. Branch openings stay separate convs (``merge=False``): ExecuTorch's portable split kernel
    refuses the channel split of a merged one. XNNPACK's passes want the weights in NCHW order, not the
    channels-last order irv2's CPU kernels keep them in."""
    from ..engine.fused_network import fuse

    folded = ExportWrapper(fuse(wrapper.model, merge=False)).eval()
    for parameter in folded.parameters():
        parameter.data = parameter.data.contiguous()
    return folded


def _quantized(wrapper: ExportWrapper, example: tuple, dynamic: tuple, calibration: np.ndarray) -> Any:
    """``wrapper`` with int8 weights and activations, its ranges observed on ``calibration``."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    graph = torch.export.export(wrapper, example, dynamic_shapes=dynamic).module()
    observed = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for image in calibration:
            observed(torch.from_numpy(np.ascontiguousarray(image[None])))
    return convert_pt2e(observed)


def run_executorch(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """Run the ``.pte`` program with ExecuTorch's own runtime on ``images`` ``[B, H, W, 3]``:
    ``{output name: array}``."""
    import torch
    from executorch.runtime import Runtime

    names = read_executorch_metadata(path)["output_names"]
    program = Runtime.get().load_program(str(path))
    outputs = program.load_method("forward").execute([torch.from_numpy(np.ascontiguousarray(images))])
    return {name: np.array(value) for name, value in zip(names, outputs, strict=True)}


def read_executorch_metadata(path: Path) -> dict[str, Any]:
    """The ``irv2`` metadata of a ``.pte`` program written by :func:`write_executorch`."""
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(str(path))
    if METADATA_METHOD not in program.method_names:
        raise ValueError(f"{path}: no {METADATA_METHOD!r} method: not a .pte program written by irv2 export")
    (document,) = program.load_method(METADATA_METHOD).execute([])
    return json.loads(np.asarray(document, dtype=np.uint8).tobytes())
