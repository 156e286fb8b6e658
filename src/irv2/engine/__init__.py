"""The inference engine: the network rearranged for speed (``fuse``), its precisions and compilation."""

from .fused_network import FusedInceptionResNetV2, fuse
from .precision import PRECISIONS, Precision, resolve_precision
from .runner import InferenceEngine

__all__ = ["PRECISIONS", "FusedInceptionResNetV2", "InferenceEngine", "Precision", "fuse", "resolve_precision"]
