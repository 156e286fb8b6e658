"""``irv2.load`` and ``irv2.save``: from any supported file to a ready ``Module`` and back."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine import build_engine, resolve_engine, resolve_precision
from ..errors import CheckpointError, HandleError, WeightMismatchError
from ..formats import read_checkpoint
from ..formats.keras_h5 import is_hdf5, read_keras_h5
from ..labels import labels_for
from ..model import InceptionResNetV2
from ..preprocessing import Preprocessing
from ..weights.keras_names import keras_to_slim
from ..weights.native import CONFIG_FILE, is_native_module, read_native_config, read_safetensors, save_native
from ..weights.native import WEIGHTS_FILE as NATIVE_WEIGHTS
from ..weights.slim_convert import SlimLayout, inspect_layout, slim_to_state_dict
from .module import CLASSIFICATION, FEATURE_VECTOR, Module, ModuleInfo
from .train_graph import set_train_mode

ARCHITECTURE = "inception_resnet_v2"

HANDLE_HELP = (
    "irv2.load takes a TF-Hub module folder or .tar.gz, a TF-Slim V1 .ckpt file or .tar.gz, "
    "a V2 checkpoint prefix, an irv2 module folder (irv2.save), a .safetensors state dict or Keras .h5 weights"
)


def load(
    handle: str | os.PathLike[str] | None = None,
    *,
    signature: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    engine: str | None = None,
    calibration: np.ndarray | Sequence[str | os.PathLike[str]] | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
    tags: Iterable[str] | None = None,
) -> Module:
    """Load Inception-ResNet-v2 weights into an inference-ready ``Module``.

    Args:
        handle: None for the default (TF-Hub ``classification/1``); a registered handle as users write
            it (``https://tfhub.dev/google/imagenet/inception_resnet_v2/classification/1``, its Kaggle
            Models address, ``google/imagenet/inception_resnet_v2/feature_vector/1``, the TF-Slim tarball
            URL, ...) or any other http(s) URL, fetched once, verified and cached under ``$IRV2_HOME``; or a
            local TF-Hub module folder or archive, TF checkpoint (V1 file or V2 prefix), irv2 module folder,
            ``.safetensors`` state dict with irv2/timm keys, or Keras ``.h5`` weights.
        signature: the default signature of the returned module (``image_classification`` or
            ``image_feature_vector``); defaults to classification when the weights have a classifier.
        device: where to run (default: CPU), e.g. ``"cuda"``.
        dtype: the precision to run in (``irv2.engine.PRECISIONS``): ``"float32"`` (the default, exact to
            TensorFlow; on CUDA it keeps cuDNN off TF32), ``"tf32"`` (CUDA), ``"bfloat16"`` (CPUs with
            AVX512-BF16 or AMX, GPUs), ``"float16"`` (GPUs) or ``"int8"`` (CPU, OpenVINO's int8 quantized by NNCF
            on ``calibration``; ``irv2[openvino]``); aliases such as ``"bf16"`` and torch dtypes work too.
            docs/performance.md measures what each costs in accuracy and gains in speed.
        engine: what runs the network (``irv2.engine.ENGINES``): ``"torch"`` (eager PyTorch on the fused
            network, BatchNorm folded and kernels fused, the same function as the plain network to about 1e-6),
            ``"plain"`` (the unfused TF-Slim network), ``"compiled"`` (``torch.compile`` of the fused network),
            ``"torchscript"`` (CPU: traced and run through oneDNN Graph), ``"onnxruntime"`` (CPU, float32:
            exported to ONNX once, cached under ``$IRV2_HOME/engines``; ``irv2[onnx]``) or ``"openvino"`` (CPU,
            float32, bfloat16 or int8 by NNCF: converted once, cached likewise; ``irv2[openvino]``).
            ``"auto"`` picks the fastest installed for the device and dtype by a measured rule
            (``irv2.engine.catalog.AUTO_ORDER``; ``irv2 info --engines`` shows it), naming a faster engine that
            is missing in a one-line notice. None (the default) means ``$IRV2_ENGINE`` when set, else
            ``"auto"``. Every float32 engine is exact to the plain network within 1e-5; the train graph always
            runs on PyTorch, and ``module.model`` stays the plain network either way.
        calibration: for int8, the images whose activation ranges fix the quantization: an array
            ``[N, H, W, 3]`` in [0, 1] or image paths (preprocessed as the module expects), typical of the task.
        offline: never touch the network (default: the ``IRV2_OFFLINE`` environment variable).
        progress: show a download progress bar (default: only on a terminal).
        tags: ``{"train"}`` for TF-Hub's training graph: BatchNorm normalises with batch statistics and
            updates its moving averages (decay 0.997), dropout 0.2 before the classifier, and every weight is
            trainable. ``irv2.finetune.set_train_mode`` sets other decay and dropout values. The default (empty
            set) is the inference graph.

    Raises:
        Irv2Error: weights that cannot be found, fetched or read (``HandleError``, ``DownloadError``,
            ``CheckpointError``, ``WeightMismatchError``), or an engine's missing extra
            (``MissingDependencyError``).
        ValueError: a signature, dtype or engine that these weights or this device cannot run, saying why.
    """
    train = _train_tag(tags)
    target = torch.device(device) if device is not None else torch.device("cpu")
    # Checked before any weights are read: a wrong dtype or engine fails at once, not after a download.
    precision = resolve_precision(dtype, target)
    spec = resolve_engine(engine, precision, target, train=train)
    local = Path(handle).expanduser() if handle is not None else None
    if local is not None and (local.exists() or Path(f"{local}.index").exists()):
        model, info = _load_local(local)
    else:
        model, info = _load_from_hub(handle, offline=offline, progress=progress)
    if signature is not None:
        if signature not in (CLASSIFICATION, FEATURE_VECTOR):
            raise ValueError(f"unknown signature {signature!r}; use {CLASSIFICATION!r} or {FEATURE_VECTOR!r}")
        if signature == CLASSIFICATION and not info.num_classes:
            raise ValueError(f"{handle} has no classifier (a feature-vector module): use {FEATURE_VECTOR!r}")
        info.default_signature = signature
    images = calibration_images(calibration, info.preprocessing) if precision.name == "int8" else None
    runner = build_engine(
        spec, model, precision, device=target, image_size=info.image_size, calibration=images, train=train
    )
    if train:
        set_train_mode(model)
    return Module(model, info, runner)


def calibration_images(
    calibration: np.ndarray | Sequence[str | os.PathLike[str]] | None, preprocessing: Preprocessing
) -> np.ndarray | None:
    """``calibration`` as one array ``[N, H, W, 3]`` in [0, 1] (what engines take); paths are preprocessed by
    ``preprocessing``, the module's recipe."""
    if calibration is None or isinstance(calibration, np.ndarray):
        return calibration
    paths = list(calibration)
    if paths and all(isinstance(p, (str, os.PathLike)) for p in paths):
        return np.stack([preprocessing(p) for p in paths])
    return np.asarray(calibration, dtype=np.float32)


def _train_tag(tags: Iterable[str] | None) -> bool:
    if tags is None:
        return False
    tags = {tags} if isinstance(tags, str) else set(tags)
    if not tags <= {"train"}:
        raise ValueError(f"unknown tags {sorted(tags - {'train'})}: TF-Hub modules have {{}} and {{'train'}}")
    return "train" in tags


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


def save(module: Module, path: str | os.PathLike[str]) -> Path:
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
        provenance={**config.get("provenance", {}), "loaded_from": str(path)},
    )
    return model, info


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
