"""``irv2.load`` and ``irv2.save``: from any supported file to a ready ``Module`` and back."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine import InferenceEngine, fuse, resolve_precision
from ..errors import CheckpointError, HandleError, WeightMismatchError
from ..formats import read_checkpoint
from ..formats.keras_h5 import is_hdf5, read_keras_h5
from ..labels import labels_for
from ..model import InceptionResNetV2
from ..weights.keras_names import keras_to_slim
from ..weights.native import WEIGHTS_FILE as NATIVE_WEIGHTS
from ..weights.native import is_native_module, read_native_config, read_safetensors, save_native
from ..weights.slim_convert import SlimLayout, inspect_layout, slim_to_state_dict
from .module import CLASSIFICATION, FEATURE_VECTOR, Module, ModuleInfo

ARCHITECTURE = "inception_resnet_v2"
ENGINES = ("torch", "torchscript", "onnxruntime")

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
    fast: bool = True,
    compile: bool = False,
    engine: str | None = None,
    calibration: np.ndarray | Sequence[str | os.PathLike[str]] | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
    tags: Iterable[str] | None = None,
    batch_norm_momentum: float = 0.997,
    dropout_rate: float = 0.2,
) -> Module:
    """Load Inception-ResNet-v2 weights into an inference-ready ``Module``.

    Args:
        handle: None for the default (TF-Hub ``classification/1``); a registered handle as users write
            it (``https://tfhub.dev/google/imagenet/inception_resnet_v2/classification/1``,
            ``google/imagenet/inception_resnet_v2/feature_vector/1``, the TF-Slim tarball URL, ...) or any
            other http(s) URL, fetched once, verified and cached under ``$IRV2_HOME``; or a local TF-Hub
            module folder or archive, TF checkpoint (V1 file or V2 prefix), irv2 module folder,
            ``.safetensors`` state dict with irv2/timm keys, or Keras ``.h5`` weights.
        signature: the default signature of the returned module (``image_classification`` or
            ``image_feature_vector``); defaults to classification when the weights have a classifier.
        device: where to run (default: CPU), e.g. ``"cuda"``.
        dtype: the precision to run in: ``"float32"`` (the default, exact to TensorFlow within ~1e-6; on
            CUDA it keeps cuDNN off TF32), ``"tf32"`` (CUDA), ``"bfloat16"`` (CPUs with AVX512-BF16/AMX,
            GPUs; logits within about 1% of float32), ``"float16"`` (GPUs) or ``"int8"`` (CPU, through ONNX
            Runtime's static quantization calibrated on ``calibration``; about 3.5x float32 on CPUs with
            VNNI, at the accuracy cost stated in docs/performance.md); a torch dtype works too.
        fast: run inference through the fused network (BatchNorm and residual scales folded into the
            convolutions, ReLU and residual sums fused into oneDNN's kernels, channels-last): the same
            function to ~1e-6, 1.1-1.3x faster on CPU. ``module.model`` stays the plain network either way.
        compile: also ``torch.compile`` the fused network (slow first call per batch shape, then faster;
            torch caches the compiled code on disk).
        engine: ``"torch"`` (eager PyTorch; the default for every dtype but int8), ``"torchscript"`` (CPU,
            float32 or bfloat16: the fused network traced and run through oneDNN Graph; 1.05-1.15x faster
            once warm, 2-4 s of tracing and compiling on the first calls, so for batch jobs and servers) or
            ``"onnxruntime"`` (CPU, float32 or int8: the network exported to ONNX once, cached under
            ``$IRV2_HOME/engines``, and run by ONNX Runtime; needs ``pip install 'irv2[onnx]'``).
        calibration: for int8, the images whose activation ranges fix the quantization: an array
            ``[N, H, W, 3]`` in [0, 1] or image paths (32-128 images typical of the task).
        offline: never touch the network (default: the ``IRV2_OFFLINE`` environment variable).
        progress: show a download progress bar (default: only on a terminal).
        tags: ``{"train"}`` for TF-Hub's training graph: BatchNorm normalises with batch statistics and
            updates its moving averages, dropout is on, and every weight is trainable. The default (empty
            set) is the inference graph.
        batch_norm_momentum: with ``{"train"}``, the moving-average decay as TensorFlow states it
            (``moving = decay * moving + (1 - decay) * batch``); 0.997 as in later TF-Hub versions
            (TF-Slim trained with 0.9997). PyTorch's momentum is the other weight, ``1 - decay``.
        dropout_rate: with ``{"train"}``, the dropout before the classifier (TF-Slim's keep_prob 0.8).
    """
    train = _train_tag(tags)
    if train and not 0.0 < batch_norm_momentum < 1.0:
        raise ValueError(f"batch_norm_momentum is a decay in (0, 1), got {batch_norm_momentum}")
    if train and not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}")
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
    precision = resolve_precision(dtype, torch.device(device) if device is not None else torch.device("cpu"))
    runtime = _engine_for(engine, precision, train=train, compile=compile, fast=fast)
    if runtime == "onnxruntime":
        from ..engine.onnxruntime_engine import OnnxRuntimeEngine

        model.to(device=device, dtype=torch.float32).eval()
        ort_engine = OnnxRuntimeEngine(model, precision, _calibration_images(calibration))
        ort_engine.build()  # export (and quantize) now, once: the first call is then as fast as the rest
        return Module(model, info, ort_engine)
    if runtime == "torchscript":
        from ..engine.torchscript_engine import TorchScriptEngine

        torch_engine = TorchScriptEngine(model, precision)
    else:
        torch_engine = InferenceEngine(model, precision, fused=fast and not train, compile=compile)
    # Fold while the weights are still float32, so a bfloat16/float16 engine rounds each weight once.
    fused = fuse(model, merge=torch_engine.merge_openings) if torch_engine.fused else None
    model.to(device=device, dtype=precision.dtype).eval()
    if fused is not None:
        torch_engine.prepare_from(fused)
    if train:
        set_train_mode(model, batch_norm_momentum=batch_norm_momentum, dropout_rate=dropout_rate)
    return Module(model, info, torch_engine)


def _engine_for(engine: str | None, precision, *, train: bool, compile: bool, fast: bool) -> str:
    """Which engine runs inference: ``engine`` as asked, else ONNX Runtime for int8 and PyTorch otherwise."""
    runtime = engine or ("onnxruntime" if precision.name == "int8" else "torch")
    if runtime not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; use one of {', '.join(map(repr, ENGINES))}")
    if runtime != "onnxruntime" and precision.name == "int8":
        raise ValueError("int8 runs through ONNX Runtime: use engine='onnxruntime' (or leave engine unset)")
    if runtime == "torchscript":
        if train:
            raise ValueError("the {'train'} graph runs eagerly: engine='torchscript' is for inference")
        if compile:
            raise ValueError("compile=True compiles the eager engine; engine='torchscript' is already a graph")
        if not fast:
            raise ValueError("engine='torchscript' traces the fused network: it has no fast=False form")
    if runtime == "onnxruntime":
        if precision.name not in ("float32", "int8"):
            raise ValueError(f"engine='onnxruntime' runs float32 or int8 on the CPU, not {precision.name}")
        if train:
            raise ValueError("the {'train'} graph runs in PyTorch: engine='onnxruntime' is for inference")
        if compile:
            raise ValueError("compile=True compiles the PyTorch engine; ONNX Runtime optimises its own graph")
    return runtime


def _calibration_images(calibration: np.ndarray | Sequence[str | os.PathLike[str]] | None) -> np.ndarray | None:
    """Calibration images as one array ``[N, 299, 299, 3]`` in [0, 1]; paths are read with ``load_image``."""
    if calibration is None or isinstance(calibration, np.ndarray):
        return calibration
    from ..preprocessing import load_image

    paths = list(calibration)
    if paths and all(isinstance(p, (str, os.PathLike)) for p in paths):
        return np.stack([load_image(p) for p in paths])
    return np.asarray(calibration, dtype=np.float32)


def set_train_mode(model: InceptionResNetV2, *, batch_norm_momentum: float = 0.997, dropout_rate: float = 0.2) -> None:
    """Put ``model`` in TF-Hub's ``{"train"}`` graph state (see ``load``)."""
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = 1.0 - batch_norm_momentum
        elif isinstance(layer, torch.nn.Dropout):
            layer.p = dropout_rate
    for name, parameter in model.named_parameters():
        # TF-Slim's BatchNorm has no scale: the PyTorch stand-in stays fixed at one.
        parameter.requires_grad_(not name.endswith("bn.weight"))
    model.train()


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
        info.preprocessing = dict(source.preprocessing)
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
        "image_size": list(info.image_size),
        "input_range": [0.0, 1.0],
        "default_signature": info.default_signature,
        "preprocessing": info.preprocessing,
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
    random initialisation would be wasted work (0.6 s); ``load_state_dict(assign=True)`` fills it."""
    with torch.device("meta"):
        return InceptionResNetV2(num_classes=layout.num_classes, aux_logits=layout.aux_logits)
