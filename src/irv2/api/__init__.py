"""The user-facing API: ``load``, ``save`` and the TF-Hub-style ``Module``."""

from .load import load, save, set_train_mode
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
