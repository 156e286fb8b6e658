"""The user-facing API: ``load``, ``save`` and the TF-Hub-style ``Module`` (importing it imports no torch)."""

from .._lazy import lazy_attributes
from .load import load, save
from .module import CLASSIFICATION, FEATURE_VECTOR, Module, ModuleInfo, get_expected_image_size

__all__ = [
    "CLASSIFICATION",
    "FEATURE_VECTOR",
    "Module",
    "ModuleInfo",
    "get_expected_image_size",
    "load",
    "save",
    "set_train_mode",
]

__getattr__, __dir__ = lazy_attributes(__name__, {"set_train_mode": ".train_graph"}, __all__)
