"""The inference engines: the network rearranged for speed (``fuse``), its precisions, and the table of the
engines that run it (``ENGINES``: eager PyTorch, torch.compile, TorchScript, ONNX Runtime, OpenVINO) and the
rule that picks one when none is named (``default_engine``, ``auto_engine``).

The table, the precisions and the choice import without torch; the PyTorch engines import it when first used.
"""

from .._lazy import lazy_attributes
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
from .precision import PRECISIONS, Precision, resolve_precision

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

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {"FusedInceptionResNetV2": ".fused_network", "fuse": ".fused_network", "InferenceEngine": ".runner"},
    __all__,
)
