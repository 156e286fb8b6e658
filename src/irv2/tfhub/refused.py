"""The names of ``tensorflow_hub.__all__`` that irv2.tfhub does not provide, each with what to use instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from ..errors import Irv2Error

_BUILDING = (
    "irv2 does not build TF-Hub modules: save a module with irv2.save(module, path) or module.export(path), "
    "and export it for TensorFlow with irv2.export(module, path, format='savedmodel')"
)
_TEXT = "irv2 is an image model: it has no text embeddings"

INSTEAD: dict[str, str] = {
    "image_embedding_column": (
        "irv2 has no Estimator feature columns: compute the features with "
        "module(images, signature='image_feature_vector'), or `irv2 features` on the command line"
    ),
    "text_embedding_column": _TEXT,
    "text_embedding_column_v2": _TEXT,
    "sparse_text_embedding_column": _TEXT,
    "create_module_spec": _BUILDING,
    "create_module_spec_from_saved_model": _BUILDING,
    "add_signature": _BUILDING,
    "attach_message": _BUILDING,
    "attach_image_module_info": _BUILDING,
    "register_module_for_export": _BUILDING,
    "LatestModuleExporter": _BUILDING,
}


def refusal(name: str) -> Callable[..., NoReturn]:
    """A stand-in for TF-Hub's ``name`` that raises, saying what to use instead, when ported code calls it."""

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise Irv2Error(f"hub.{name} is not supported by irv2.tfhub: {INSTEAD[name]}")

    refuse.__name__ = refuse.__qualname__ = name
    return refuse
