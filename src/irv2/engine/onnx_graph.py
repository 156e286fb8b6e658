"""Writing a network as an ONNX graph with PyTorch's ``torch.export``-based exporter.

Shared by ``irv2.export`` (the user-facing artefact, with TF-Hub's NHWC interface) and the ONNX Runtime
engine (its own graph, cached). Needs the ``onnx`` extra (onnx, onnxscript).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .io_names import FEATURES, LOGITS, OPSET

__all__ = ["FEATURES", "LOGITS", "OPSET", "NetworkOutputs", "quiet_exporter", "write_onnx"]


class NetworkOutputs(nn.Module):
    """What every graph irv2 writes computes: NCHW in [-1, 1] → ``(logits, features)``, or ``(features,)``
    for a network without a classifier (``output_names`` says which)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @property
    def output_names(self) -> tuple[str, ...]:
        return (LOGITS, FEATURES) if self.model.num_classes else (FEATURES,)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feature_map = self.model.forward_features(x)
        features = self.model.forward_head(feature_map, pre_logits=True)
        if not self.model.num_classes:
            return (features,)
        return self.model.forward_head(feature_map), features


def write_onnx(
    network: nn.Module,
    path: Path,
    *,
    example: torch.Tensor,
    input_name: str,
    output_names: Sequence[str],
    dynamic_axes: dict[int, torch.export.Dim],
    metadata: dict[str, str] | None = None,
) -> None:
    """Export ``network`` (one input, ``output_names`` outputs) to the single file ``path``, weights inside.

    ``example`` must have a batch of at least 2: torch.export specialises a dimension whose example size is 1.
    """
    with quiet_exporter():
        program = torch.onnx.export(
            network,
            (example,),
            input_names=[input_name],
            output_names=list(output_names),
            opset_version=OPSET,
            dynamic_shapes={input_name: dynamic_axes},
            dynamo=True,
            verbose=False,
        )
        program.model.metadata_props.update(metadata or {})
        # One self-contained file: the weights (well under protobuf's 2 GB limit) stay inside the model.
        program.save(path, external_data=False)


@contextlib.contextmanager
def quiet_exporter():
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
