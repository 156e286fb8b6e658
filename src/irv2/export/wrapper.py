"""The network as every export sees it: TF-Hub's image interface in one ``nn.Module``.

``images`` float32 ``[B, H, W, 3]`` (channel last) with values in [0, 1] go in, as into the TF-Hub module
and ``irv2.Module``; ``logits`` ``[B, num_classes]`` and ``features`` ``[B, 1536]`` come out (only
``features`` for a feature-vector module, ``num_classes == 0``). Exporting this wrapper rather than
``module.model`` moves the [0, 1] → [-1, 1] mapping and the NHWC → NCHW transpose into the artefact, so a
consumer feeds it exactly what it would feed TF-Hub.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..api import Module
from ..data import sample_photos
from ..engine.io_names import EXPORT_INPUT
from ..engine.onnx_graph import FEATURES, LOGITS, NetworkOutputs

# The output names every export uses (defined with the graph writer, which the ONNX Runtime engine shares).
__all__ = [
    "FEATURES",
    "INPUT_NAME",
    "LOGITS",
    "ExportWrapper",
    "check_images",
    "export_wrapper",
    "reference_outputs",
    "relative_error",
]

INPUT_NAME = EXPORT_INPUT


class ExportWrapper(NetworkOutputs):
    """``images [B, H, W, 3]`` in [0, 1] → ``(logits [B, num_classes], features [B, 1536])``.

    A feature-vector network (``num_classes == 0``) returns ``(features,)``; ``output_names`` says which.
    """

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # The same arithmetic, in the same order, as irv2.Module.__call__: transpose, then 2x - 1.
        return super().forward(2.0 * images.permute(0, 3, 1, 2) - 1.0)


def export_wrapper(module: Module) -> ExportWrapper:
    """``module``'s network in inference form (eval mode, float32, CPU), wrapped.

    The caller's module is never changed: a network in train mode (``tags={"train"}``), on a GPU or in half
    precision is copied first. Exports are float32 on CPU because that is what every runtime reads back
    bit for bit comparable; a runtime may still cast or move the artefact later.
    """
    model = module.model
    if model.training or module.device.type != "cpu" or module.dtype != torch.float32:
        model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    return ExportWrapper(model).eval()


def reference_outputs(wrapper: ExportWrapper, images: np.ndarray) -> dict[str, np.ndarray]:
    """What the exported artefact must reproduce for ``images``: ``{output name: array}``."""
    with torch.inference_mode():
        outputs = wrapper(torch.from_numpy(images))
    return {name: value.numpy() for name, value in zip(wrapper.output_names, outputs, strict=True)}


def check_images(image_size: tuple[int, int], *, any_size: bool) -> list[np.ndarray]:
    """Batches to compare an export with irv2 on: the bundled photo and its mirror image at ``image_size``
    (batch 2, so a batch axis fixed at 1 cannot pass), then one photo alone (batch 1); with ``any_size`` also
    a non-square view 36 px shorter and 21 px wider, which a graph fixed at ``image_size`` cannot take.
    """
    pair = sample_photos(size=image_size)
    batches = [pair, pair[:1]]
    if any_size:
        height, width = image_size
        batches.append(sample_photos(size=(height - 36, width + 21))[:1])
    return batches


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """``max |actual - expected| / max |expected|``: the export's error, relative to the output's scale."""
    if actual.shape != expected.shape:
        return float("inf")
    scale = float(np.abs(expected).max()) or 1.0
    return float(np.abs(actual.astype(np.float64) - expected).max()) / scale
