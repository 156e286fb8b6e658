"""The inference engines: the network rearranged for speed (``fuse``), its precisions, and the table of the
engines that run it (``ENGINES``: eager PyTorch, torch.compile, TorchScript, ONNX Runtime)."""

from .catalog import DEFAULT_ENGINE, ENGINES, EngineSpec, build_engine, engine_names, engines_for, resolve_engine
from .fused_network import FusedInceptionResNetV2, fuse
from .precision import PRECISIONS, Precision, resolve_precision
from .runner import InferenceEngine

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "PRECISIONS",
    "EngineSpec",
    "FusedInceptionResNetV2",
    "InferenceEngine",
    "Precision",
    "build_engine",
    "engine_names",
    "engines_for",
    "fuse",
    "resolve_engine",
    "resolve_precision",
]
