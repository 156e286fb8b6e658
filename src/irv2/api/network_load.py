"""Reading weights into the PyTorch network: every local format, the hub's cached copies, and irv2's own module
folders (``irv2.save``). What ``irv2.load`` does when it needs the network, and what a module running from a
prepared engine file does when ``module.model`` is first asked for. Imports torch.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, HandleError, WeightMismatchError
from ..formats import read_checkpoint_contents
from ..formats.keras_h5 import is_hdf5, read_keras_h5
from ..labels import labels_for
from ..model import InceptionResNetV2
from ..preprocessing import Preprocessing
from ..weights.keras_names import keras_to_slim
from ..weights.native import CONFIG_FILE, is_native_module, read_native_config, read_safetensors, save_native
from ..weights.native import WEIGHTS_FILE as NATIVE_WEIGHTS
from ..weights.slim_convert import SlimLayout, inspect_layout, slim_to_state_dict
from .declared_outputs import PROVENANCE_KEY, provenance_record, recorded_outputs
from .module import CLASSIFICATION, FEATURE_VECTOR, Module, ModuleInfo

ARCHITECTURE = "inception_resnet_v2"

HANDLE_HELP = (
    "irv2.load takes a TF-Hub module folder or .tar.gz, a TF-Slim V1 .ckpt file or .tar.gz, "
    "a V2 checkpoint prefix, an irv2 module folder (irv2.save), a .safetensors state dict or Keras .h5 weights, "
    "or an irv2 export (.onnx file or OpenVINO folder)"
)


def load_network(
    handle: str | os.PathLike[str] | None, *, offline: bool | None = None, progress: bool | None = None
) -> tuple[InceptionResNetV2, ModuleInfo]:
    """The plain network (float32, CPU, eval mode) and its info, from a local file or folder or a registered
    handle or URL (fetched once, converted once and cached)."""
    local = Path(handle).expanduser() if handle is not None else None
    if local is not None and (local.exists() or Path(f"{local}.index").exists()):
        return _load_local(local)
    return _load_from_hub(handle, offline=offline, progress=progress)


def _load_local(path: Path) -> tuple[InceptionResNetV2, ModuleInfo]:
    if is_native_module(path):
        return _load_native(path)
    if path.suffix == ".safetensors":
        return _load_state_dict_file(path)
    if is_hdf5(path):
        return _load_keras_h5(path)
    return _load_tensorflow(path)


def _load_from_hub(
    handle: str | os.PathLike[str] | None, *, offline: bool | None, progress: bool | None
) -> tuple[InceptionResNetV2, ModuleInfo]:
    """Registered handles and URLs: the native copy if one is cached, else fetch, convert and cache it.

    After the first load the weights live in irv2's own format under ``$IRV2_HOME/modules``, so a later
    load neither re-reads nor re-verifies the original archive, and works offline.
    """
    from .. import hub

    try:
        source = hub.resolve_source(None if handle is None else os.fspath(handle))
    except HandleError:
        registered = ", ".join(s.name for s in hub.sources())
        raise HandleError(
            f"{handle}: no such file or folder, and not a registered handle or URL. {HANDLE_HELP}; "
            f"or a registered handle ({registered}) or an http(s) URL"
        ) from None
    cache = hub.module_cache_dir(source)
    if is_native_module(cache):
        try:
            return _load_native(cache)
        except (CheckpointError, WeightMismatchError) as exc:
            warnings.warn(f"ignoring a damaged cached module, converting again: {exc}", RuntimeWarning, stacklevel=3)
    artifact = hub.fetch(source, offline=offline, progress=progress)
    model, info = _load_local(artifact)
    checksum = hub.describe(source).get("checksum")
    info.provenance.update(source=source.name, urls=list(source.urls), checksum=checksum, artifact=str(artifact))
    if source.preprocessing:
        info.preprocessing = Preprocessing.from_dict(source.preprocessing)
    try:
        with hub.FileLock(cache.parent / f"{cache.name}.lock"):
            _save_module(model, info, cache)
    except OSError as exc:
        warnings.warn(f"could not cache the converted weights in {cache}: {exc}", RuntimeWarning, stacklevel=3)
    return model, info


def save_module(module: Module, path: str | os.PathLike[str]) -> Path:
    """Write ``module`` as an irv2 module folder (``model.safetensors`` + ``irv2.json``) at ``path``."""
    return _save_module(module.model, module.info, Path(path))


def _save_module(model: InceptionResNetV2, info: ModuleInfo, path: Path) -> Path:
    config = {
        "architecture": ARCHITECTURE,
        "num_classes": info.num_classes,
        "aux_logits": model.aux_logits is not None,
        # The size stays at the top level too, where irv2 before 0.2 (and tools reading irv2.json) look for it.
        "image_size": list(info.image_size),
        "input_range": [0.0, 1.0],
        "default_signature": info.default_signature,
        "preprocessing": info.preprocessing.to_dict(),
        "labels": info.labels,
        "provenance": info.provenance,
    }
    return save_native(path, model.state_dict(), config)


def _new_info(num_classes: int, provenance: dict[str, Any]) -> ModuleInfo:
    return ModuleInfo(
        num_classes=num_classes,
        labels=labels_for(num_classes),
        default_signature=CLASSIFICATION if num_classes else FEATURE_VECTOR,
        provenance=provenance,
    )


def _load_tensorflow(path: Path) -> tuple[InceptionResNetV2, ModuleInfo]:
    contents = read_checkpoint_contents(path)
    model, info = _model_from_slim(path, contents.tensors, contents.format)
    if any(contents.signature_outputs.values()):  # a TF-Hub module whose file declares signatures
        info.provenance[PROVENANCE_KEY] = provenance_record(contents.signature_outputs)
    return model, info


def _load_keras_h5(path: Path) -> tuple[InceptionResNetV2, ModuleInfo]:
    try:
        tensors = keras_to_slim(read_keras_h5(path))
    except WeightMismatchError as exc:
        raise WeightMismatchError(f"{path}: {exc}") from None
    return _model_from_slim(path, tensors, "keras-h5")


def _model_from_slim(path: Path, tensors: dict, format_name: str) -> tuple[InceptionResNetV2, ModuleInfo]:
    layout = inspect_layout(tensors)
    model = _empty_model(layout)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    try:
        conversion = slim_to_state_dict(tensors, expected, layout=layout)
    except WeightMismatchError as exc:
        raise WeightMismatchError(f"{path}: {exc}") from None
    model.load_state_dict(conversion.state_dict, strict=True, assign=True)
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
    state = read_safetensors(path / NATIVE_WEIGHTS, sha256=config.get("weights_sha256"))
    layout = SlimLayout(int(config["num_classes"]), bool(config.get("aux_logits", False)))
    model = _model_from_state_dict(path, state, layout)
    info = ModuleInfo(
        num_classes=layout.num_classes,
        labels=config.get("labels"),
        default_signature=config.get("default_signature", CLASSIFICATION if layout.num_classes else FEATURE_VECTOR),
        preprocessing=_preprocessing_of(path, config),
        provenance=_provenance_of(path, config),
    )
    return model, info


def _provenance_of(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    provenance = {**config.get("provenance", {}), "loaded_from": str(path)}
    try:
        recorded_outputs(provenance)  # checked now, not at the first info dict asked for
    except ValueError as exc:
        raise CheckpointError(path / CONFIG_FILE, str(exc)) from None
    return provenance


def _preprocessing_of(path: Path, config: dict[str, Any]) -> Preprocessing:
    try:
        return Preprocessing.from_dict(config.get("preprocessing"), image_size=config.get("image_size"))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(path / CONFIG_FILE, f"its preprocessing cannot be used ({exc})") from None


def _layout_of_state_dict(path: Path, state: dict[str, torch.Tensor]) -> SlimLayout:
    classif = state.get("classif.weight")
    if classif is not None and classif.ndim != 2:
        raise WeightMismatchError(f"{path}: classif.weight has shape {list(classif.shape)}, expected 2-D")
    num_classes = int(classif.shape[0]) if classif is not None else 0
    return SlimLayout(num_classes, any(k.startswith("aux_logits.") for k in state))


def _model_from_state_dict(path: Path, state: dict[str, torch.Tensor], layout: SlimLayout) -> InceptionResNetV2:
    model = _empty_model(layout)
    expected = model.state_dict()
    # Older PyTorch exports omit BatchNorm's step counter; it plays no part in the forward pass.
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
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
    model.load_state_dict(state, strict=True, assign=True)
    return model


def _empty_model(layout: SlimLayout) -> InceptionResNetV2:
    """The network without storage ("meta" tensors): every tensor comes from the weights file, so
    random initialisation would be wasted work; ``load_state_dict(assign=True)`` fills it."""
    with torch.device("meta"):
        return InceptionResNetV2(num_classes=layout.num_classes, aux_logits=layout.aux_logits)
