"""``irv2.load`` and ``irv2.save``: from any supported file to a ready ``Module`` and back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, HandleError, WeightMismatchError
from ..formats import read_checkpoint
from ..formats.keras_h5 import is_hdf5, read_keras_h5
from ..labels import labels_for
from ..model import InceptionResNetV2
from ..weights.native import WEIGHTS_FILE as NATIVE_WEIGHTS
from ..weights.keras_names import keras_to_slim
from ..weights.native import is_native_module, read_native_config, read_safetensors, save_native
from ..weights.slim_convert import SlimLayout, inspect_layout, slim_to_state_dict
from .module import CLASSIFICATION, FEATURE_VECTOR, Module, ModuleInfo

ARCHITECTURE = "inception_resnet_v2"

HANDLE_HELP = (
    "irv2.load takes a TF-Hub module folder or .tar.gz, a TF-Slim V1 .ckpt file or .tar.gz, "
    "a V2 checkpoint prefix, an irv2 module folder (irv2.save), a .safetensors state dict or Keras .h5 weights"
)


def load(
    handle: str | os.PathLike[str],
    *,
    signature: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Module:
    """Load Inception-ResNet-v2 weights from ``handle`` into an inference-ready ``Module``.

    Args:
        handle: a local TF-Hub module folder or archive, TF checkpoint (V1 file or V2 prefix), irv2
            module folder, or ``.safetensors`` file with irv2/timm keys.
        signature: the default signature of the returned module (``image_classification`` or
            ``image_feature_vector``); defaults to classification when the weights have a classifier.
        device, dtype: where and in which float type to run (default: CPU, float32).
    """
    path = Path(handle).expanduser()
    if is_native_module(path):
        model, info = _load_native(path)
    elif path.suffix == ".safetensors":
        model, info = _load_state_dict_file(path)
    elif is_hdf5(path):
        model, info = _load_keras_h5(path)
    elif path.exists() or Path(f"{path}.index").exists():
        model, info = _load_tensorflow(path)
    else:
        raise HandleError(f"{handle}: no such file or folder. {HANDLE_HELP}")
    if signature is not None:
        if signature not in (CLASSIFICATION, FEATURE_VECTOR):
            raise ValueError(f"unknown signature {signature!r}; use {CLASSIFICATION!r} or {FEATURE_VECTOR!r}")
        if signature == CLASSIFICATION and not info.num_classes:
            raise ValueError(f"{handle} has no classifier (a feature-vector module): use {FEATURE_VECTOR!r}")
        info.default_signature = signature
    model.to(device=device, dtype=dtype).eval()
    return Module(model, info)


def save(module: Module, path: str | os.PathLike[str]) -> Path:
    """Write ``module`` as an irv2 module folder (``model.safetensors`` + ``irv2.json``) at ``path``."""
    info = module.info
    config = {
        "architecture": ARCHITECTURE,
        "num_classes": info.num_classes,
        "aux_logits": module.model.aux_logits is not None,
        "image_size": list(info.image_size),
        "input_range": [0.0, 1.0],
        "default_signature": info.default_signature,
        "preprocessing": info.preprocessing,
        "labels": info.labels,
        "provenance": info.provenance,
    }
    return save_native(path, module.model.state_dict(), config)


def _new_info(num_classes: int, provenance: dict[str, Any]) -> ModuleInfo:
    return ModuleInfo(
        num_classes=num_classes,
        labels=labels_for(num_classes),
        default_signature=CLASSIFICATION if num_classes else FEATURE_VECTOR,
        provenance=provenance,
    )


def _load_tensorflow(path: Path) -> tuple[InceptionResNetV2, ModuleInfo]:
    tensors, format_name = read_checkpoint(path)
    return _model_from_slim(path, tensors, format_name)


def _load_keras_h5(path: Path) -> tuple[InceptionResNetV2, ModuleInfo]:
    try:
        tensors = keras_to_slim(read_keras_h5(path))
    except WeightMismatchError as exc:
        raise WeightMismatchError(f"{path}: {exc}") from None
    return _model_from_slim(path, tensors, "keras-h5")


def _model_from_slim(path: Path, tensors: dict, format_name: str) -> tuple[InceptionResNetV2, ModuleInfo]:
    layout = inspect_layout(tensors)
    model = InceptionResNetV2(num_classes=layout.num_classes, aux_logits=layout.aux_logits)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    try:
        conversion = slim_to_state_dict(tensors, expected, layout=layout)
    except WeightMismatchError as exc:
        raise WeightMismatchError(f"{path}: {exc}") from None
    model.load_state_dict(conversion.state_dict, strict=True)
    provenance = {"source": str(path), "format": format_name, "ignored_tensors": conversion.ignored}
    return model, _new_info(layout.num_classes, provenance)


def _load_state_dict_file(path: Path) -> tuple[InceptionResNetV2, ModuleInfo]:
    state = read_safetensors(path)
    layout = _layout_of_state_dict(path, state)
    model = _model_from_state_dict(path, state, layout)
    return model, _new_info(layout.num_classes, {"source": str(path), "format": "safetensors"})


def _load_native(path: Path) -> tuple[InceptionResNetV2, ModuleInfo]:
    config = read_native_config(path)
    if config.get("architecture") != ARCHITECTURE:
        raise CheckpointError(path, f"holds a {config.get('architecture')!r} model, not {ARCHITECTURE!r}")
    state = read_safetensors(path / NATIVE_WEIGHTS)
    layout = SlimLayout(int(config["num_classes"]), bool(config.get("aux_logits", False)))
    model = _model_from_state_dict(path, state, layout)
    info = ModuleInfo(
        num_classes=layout.num_classes,
        labels=config.get("labels"),
        image_size=tuple(config.get("image_size", (299, 299))),
        default_signature=config.get("default_signature", CLASSIFICATION if layout.num_classes else FEATURE_VECTOR),
        preprocessing=config.get("preprocessing", {}),
        provenance={**config.get("provenance", {}), "loaded_from": str(path)},
    )
    return model, info


def _layout_of_state_dict(path: Path, state: dict[str, torch.Tensor]) -> SlimLayout:
    classif = state.get("classif.weight")
    if classif is not None and classif.ndim != 2:
        raise WeightMismatchError(f"{path}: classif.weight has shape {list(classif.shape)}, expected 2-D")
    num_classes = int(classif.shape[0]) if classif is not None else 0
    return SlimLayout(num_classes, any(k.startswith("aux_logits.") for k in state))


def _model_from_state_dict(path: Path, state: dict[str, torch.Tensor], layout: SlimLayout) -> InceptionResNetV2:
    model = InceptionResNetV2(num_classes=layout.num_classes, aux_logits=layout.aux_logits)
    expected = model.state_dict()
    # Older PyTorch exports omit BatchNorm's step counter; it plays no part in the forward pass.
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshapen = [
        f"{k}: {list(state[k].shape)} (expected {list(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or misshapen:
        lines = [*(f"missing {k}" for k in missing), *(f"unexpected {k}" for k in unexpected), *misshapen]
        shown = "\n  ".join(lines[:20]) + (f"\n  … and {len(lines) - 20} more" if len(lines) > 20 else "")
        raise WeightMismatchError(f"{path}: the state dict does not fit Inception-ResNet-v2:\n  {shown}")
    model.load_state_dict(state, strict=True)
    return model
