"""``irv2.load`` and ``irv2.save``: from any supported file to a ready ``Module`` and back.

``irv2.load`` decides what it needs before it imports anything heavy: the precision and the engine first (no
torch), then, for ONNX Runtime and OpenVINO on the CPU, whether an engine file was prepared for these weights
before (found by the weights files' digests, no torch); only when none was does it read the weights into
PyTorch (``network_load``), build the engine and remember the file for next time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._lazy import lazy_attributes
from ..engine.catalog import ENGINES, FILE_ENGINES, build_engine, resolve_engine
from ..engine.precision import Precision, device_type, resolve_precision
from ..extras import require_torch
from ..preprocessing import Preprocessing
from .exported import export_kind, load_exported
from .module import CLASSIFICATION, FEATURE_VECTOR, Module, ModuleInfo

if TYPE_CHECKING:
    import torch


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
            ``.safetensors`` state dict with irv2/timm keys, or Keras ``.h5`` weights; or an ``irv2 export``
            ONNX file (runs on ONNX Runtime) or OpenVINO IR folder (runs on OpenVINO), without torch.
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
        ValueError: a signature, dtype or engine that these weights or this device cannot run, saying why
            (``OptionError`` for bfloat16 on a CPU without bfloat16 instructions).

    On ONNX Runtime and OpenVINO the first load of some weights reads them into PyTorch and converts the network
    once, saying so in one line on stderr; later loads open the prepared file without importing torch, and
    the network is read only when ``module.model`` is first asked for (``irv2.engine.prepared``).
    """
    train = _train_tag(tags)
    # Checked before any weights are read: a wrong dtype or engine fails at once, not after a download.
    precision = resolve_precision(dtype, device)
    local = Path(handle).expanduser() if handle is not None else None
    kind = export_kind(local) if local is not None else None
    if kind is not None:
        module = load_exported(local, kind, precision=precision, engine=engine, device=device, train=train)
        return _with_signature(module, signature, handle)
    spec = resolve_engine(engine, precision, device, train=train)
    source = None
    calibration_key = _calibration_key(calibration) if precision.name == "int8" else None
    preparable = spec.name in FILE_ENGINES and not train and device_type(device) == "cpu"
    if precision.name == "int8" and calibration_key is None:
        preparable = False  # a calibration set that cannot be named is not looked up or remembered
    if preparable:
        source = _source_key(local, handle)
        if source is not None:
            module = _open_prepared(source, spec.name, precision, calibration_key, handle, offline, progress)
            if module is not None:
                return _with_signature(module, signature, handle)

    require_torch(
        f"reading these weights into the network (engine {spec.name!r}, {precision.name}; ONNX Runtime and OpenVINO "
        "need it once per weights, to prepare their file, or run an irv2 export)"
    )
    from .network_load import load_network
    from .train_graph import set_train_mode

    model, info = load_network(handle, offline=offline, progress=progress)
    natural_signature = info.default_signature
    _check_signature(info, signature, handle)
    target = device if device is not None else "cpu"
    runner = build_engine(
        spec,
        model,
        precision,
        device=target,
        image_size=info.image_size,
        calibration=calibration_images(calibration, info.preprocessing) if precision.name == "int8" else None,
        train=train,
    )
    if train:
        set_train_mode(model)
    module = Module(model, info, runner)
    if source is None and preparable:
        source = _source_key(local, handle)  # a hub handle's first load has just cached the weights
    if source is not None:
        from ..engine import prepared

        prepared.remember(source, module, natural_signature, calibration_key)
    return _with_signature(module, signature, handle)


def save(module: Module, path: str | os.PathLike[str]) -> Path:
    """Write ``module`` as an irv2 module folder (``model.safetensors`` + ``irv2.json``) at ``path``."""
    from .network_load import save_module

    return save_module(module, path)


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


def _open_prepared(
    source: str,
    engine: str,
    precision: Precision,
    calibration_key: str | None,
    handle: Any,
    offline: bool | None,
    progress: bool | None,
) -> Module | None:
    """The module over the engine file prepared for ``source`` before, or None if there is none."""
    from ..engine import prepared

    record = prepared.find(source, engine, precision.name, calibration_key)
    if record is None:
        return None
    info = ModuleInfo(
        num_classes=int(record.info["num_classes"]),
        labels=record.info.get("labels"),
        default_signature=record.info.get("default_signature") or CLASSIFICATION,
        preprocessing=record.info.get("preprocessing"),
        provenance=record.info.get("provenance"),
    )
    runner = _runtime_engine(engine)(
        None,
        precision,
        image_size=info.image_size,
        path=record.path,
        num_classes=info.num_classes,
        calibration_sha256=record.calibration_sha256,
    )
    try:
        runner.build()
    except Exception:
        return None

    def network() -> Any:
        from .network_load import load_network

        model, _ = load_network(handle, offline=offline, progress=progress)
        return model.eval()

    return Module(None, info, runner, model_loader=network, weights_sha256=record.weights_sha256)


def _calibration_key(calibration: Any) -> str | None:
    """What the int8 calibration set is, without preprocessing it: its image files' digests, or the array's."""
    import hashlib

    from ..engine.calibration import images_sha256
    from ..hub.digests import source_digest

    if calibration is None:
        return None
    if isinstance(calibration, np.ndarray):
        return images_sha256(np.asarray(calibration, dtype=np.float32))
    paths = list(calibration)
    if not paths or not all(isinstance(p, (str, os.PathLike)) for p in paths):
        return images_sha256(np.asarray(paths, dtype=np.float32))
    digests = [source_digest(Path(p)) for p in paths]
    if None in digests:
        return None  # an unreadable image: the long way reports it
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def _runtime_engine(name: str) -> Any:
    return ENGINES[name].engine_class()


def _source_key(local: Path | None, handle: Any) -> str | None:
    """What the weights are, by their files' digests (no torch): a local file or folder's own files, a
    registered handle's cached copy; None when that cannot be known without reading them (a handle not cached
    yet, a path that is not there)."""
    from ..hub.digests import source_digest

    if local is not None and (local.exists() or Path(f"{local}.index").exists()):
        return source_digest(local)
    from .. import hub
    from ..errors import HandleError
    from ..weights.native import is_native_module

    try:
        source = hub.resolve_source(None if handle is None else os.fspath(handle))
    except HandleError:
        return None
    cache = hub.module_cache_dir(source)
    if not is_native_module(cache):
        return None
    digest = source_digest(cache)
    return None if digest is None else f"{source.name} {digest}"


def _check_signature(info: ModuleInfo, signature: str | None, handle: Any) -> None:
    if signature is None:
        return
    if signature not in (CLASSIFICATION, FEATURE_VECTOR):
        raise ValueError(f"unknown signature {signature!r}; use {CLASSIFICATION!r} or {FEATURE_VECTOR!r}")
    if signature == CLASSIFICATION and not info.num_classes:
        raise ValueError(f"{handle} has no classifier (a feature-vector module): use {FEATURE_VECTOR!r}")


def _with_signature(module: Module, signature: str | None, handle: Any) -> Module:
    _check_signature(module.info, signature, handle)
    if signature is not None:
        module.info.default_signature = signature
    return module


def _train_tag(tags: Iterable[str] | None) -> bool:
    if tags is None:
        return False
    tags = {tags} if isinstance(tags, str) else set(tags)
    if not tags <= {"train"}:
        raise ValueError(f"unknown tags {sorted(tags - {'train'})}: TF-Hub modules have {{}} and {{'train'}}")
    return "train" in tags


# ``from irv2.api.load import set_train_mode`` (its home before the train graph had a module of its own), imported on
# use: it needs torch.
__getattr__, _ = lazy_attributes(__name__, {"set_train_mode": "irv2.api.train_graph"})
