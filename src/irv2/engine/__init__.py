"""The inference engines: the network rearranged for speed (``fuse``), its precisions, and the table of the
engines that run it (``ENGINES``: eager PyTorch, torch.compile, TorchScript, ONNX Runtime, OpenVINO) and the
rule that picks one when none is named (``default_engine``, ``auto_engine``)."""

from .catalog import (
    AUTO,
    ENGINES,
    TORCH_ENGINE,
    EngineSpec,
    auto_choice,
    auto_engine,
    build_engine,
    default_engine,
    engine_names,
    engines_for,
    resolve_engine,
)
from .fused_network import FusedInceptionResNetV2, fuse
from .precision import PRECISIONS, Precision, resolve_precision
from .runner import InferenceEngine

__all__ = [
    "AUTO",
    "ENGINES",
    "PRECISIONS",
    "TORCH_ENGINE",
    "EngineSpec",
    "FusedInceptionResNetV2",
    "InferenceEngine",
    "Precision",
    "auto_choice",
    "auto_engine",
    "build_engine",
    "default_engine",
    "engine_names",
    "engines_for",
    "fuse",
    "resolve_engine",
    "resolve_precision",
]
