"""``OnnxRuntimeEngine``: the network run by ONNX Runtime on the CPU, in float32 or quantized to int8.

Why a second engine: on some CPUs ONNX Runtime's MLAS kernels run the float32 network faster than oneDNN under
PyTorch, and ONNX Runtime's post-training static quantization (``onnxruntime.quantization``, maintained with
the runtime) turns the network into int8 convolutions that CPUs with VNNI run several times faster than
float32, at a cost in accuracy. docs/performance.md measures both, with the machine and the command. int8 is
calibrated on images the user supplies, because the activation ranges it fixes are only as good as the images
they were measured on.

The graph (NCHW in [-1, 1] → ``logits``, ``features``) is exported once per weights, mode, calibration set,
input size and library versions and cached as ``$IRV2_HOME/engines/<key>.<precision>.onnx``; later loads only
open it. Like ``InferenceEngine``, the engine follows ``module.model``: changed weights are exported (and
quantized) again at the next call. Needs the ``onnx`` extra.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..atomic import atomic_path
from ..extras import require_extra
from ..model import InceptionResNetV2
from .fingerprint import model_fingerprint, weights_sha256
from .onnx_graph import FEATURES, LOGITS
from .precision import Precision

INPUT = "x"
_CALIBRATION_BATCH = 8
_ENGINE_FORMAT = 1  # bump when the cached graph's layout changes


class OnnxRuntimeEngine:
    """The inference path of an ``irv2.Module`` through ONNX Runtime (CPU).

    Args:
        model: the plain network (its current weights are followed; it is read, never changed).
        precision: ``float32`` (exact to ~1e-6) or ``int8`` (static quantization).
        calibration: for int8, images ``[N, H, W, 3]`` in [0, 1] whose activation ranges fix the quantization
            (32-128 typical images of the task); ignored for float32.
    """

    name = "onnxruntime"

    def __init__(
        self,
        model: InceptionResNetV2,
        precision: Precision,
        calibration: np.ndarray | None = None,
        *,
        image_size: tuple[int, int] = (299, 299),
    ) -> None:
        require_extra("onnx", "the ONNX Runtime engine")
        if precision.name not in ("float32", "int8"):
            raise ValueError(f"ONNX Runtime runs float32 or int8, not {precision.name}")
        if precision.name == "int8":
            calibration = _check_calibration(calibration, tuple(image_size))
        self.model = model
        self.precision = precision
        self.calibration = calibration
        # What the quantization was calibrated on, for records that must tell runs apart (batch jobs).
        self.calibration_sha256 = images_sha256(calibration) if precision.name == "int8" else None
        self.image_size = tuple(image_size)
        self.path: Path | None = None
        self._session = None
        self._built_for: int | None = None

    def place(self, device: torch.device | str, *, fold: bool = True) -> None:
        """Keep the model in float32 on ``device`` (the graph is exported from it) and build the graph now,
        once, so the first call is as fast as the rest."""
        self.model.to(device=device, dtype=torch.float32).eval()
        self.build()

    def forward(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        """``x`` NCHW in [-1, 1] → logits, or the 1536 features if ``pre_logits`` (float32, on ``x``'s device)."""
        batch = x.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
        return self._run(batch, pre_logits, x.device)

    def forward_images(self, images: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        """``images`` NCHW (or its NHWC view) in [0, 1] → as ``forward``; the same float32 operations as
        the PyTorch engines' ``2 * x - 1``, so the same logits bit for bit.

        The scaling and the layout change run in numpy on the calling thread. Done in PyTorch, they would wake
        its OpenMP threads, which spin for a while after each operation, on the cores ONNX Runtime's run needs
        (docs/performance.md measures what that cost at batch 1)."""
        array = images.detach().to(device="cpu", dtype=torch.float32).numpy()
        batch = np.empty(array.shape, np.float32)  # a new NCHW buffer: the caller's images stay as they are
        np.multiply(array, np.float32(2), out=batch)
        batch -= np.float32(1)
        return self._run(batch, pre_logits, images.device)

    def _run(self, batch: np.ndarray, pre_logits: bool, device: torch.device) -> torch.Tensor:
        name = FEATURES if pre_logits or not self.model.num_classes else LOGITS
        (out,) = self.session.run([name], {INPUT: batch})
        return torch.from_numpy(out).to(device)

    def build(self) -> Path:
        """Export (and quantize) the graph now if it is not cached yet, open it; returns the cached file."""
        self.session  # noqa: B018 (the property builds)
        return self.path

    @property
    def session(self):
        """The ONNX Runtime session for the model's current weights (built or re-opened when they change)."""
        fingerprint = model_fingerprint(self.model)
        if self._session is None or self._built_for != fingerprint:
            self.path = build_engine_file(self.model, self.precision.name, self.calibration, self.image_size)
            self._session = open_session(self.path)
            self._built_for = fingerprint
        return self._session


def open_session(path: Path):
    """An ONNX Runtime CPU session on ``path`` with all graph optimisations, on PyTorch's thread count."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # errors only: its warnings are about graph rewrites, not the user's input
    # ONNX Runtime's workers spin after a run by default. Here PyTorch's OpenMP threads do the work between
    # runs (input layout, output copies) on the same cores, and one spinning worker stalls them: measured on
    # 2 cores, a batch-1 call took 25 ms longer. Spinning during a run is kept; it stops when the run ends.
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def build_engine_file(
    model: InceptionResNetV2, precision: str, calibration: np.ndarray | None, image_size: tuple[int, int]
) -> Path:
    """The cached ONNX file for ``model`` in ``precision``, exported (and quantized) first if missing.

    Written under a temporary name and renamed into place, under a lock: concurrent processes build it once,
    and an interrupted build leaves nothing that a later load would trust.
    """
    from ..hub import FileLock
    from ..hub.cache import irv2_home

    folder = irv2_home() / "engines"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_cache_key(model, precision, calibration, image_size)}.{precision}.onnx"
    with FileLock(path):
        if path.is_file():
            return path
        with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as scratch:
            graph = Path(scratch) / "float32.onnx"
            _export_graph(model, graph, image_size)
            if precision == "int8":
                graph = _quantize(graph, Path(scratch), calibration)
            with atomic_path(path) as staged:
                os.replace(graph, staged)
    return path


def _export_graph(model: InceptionResNetV2, path: Path, image_size: tuple[int, int]) -> None:
    import copy

    from .onnx_graph import NetworkOutputs, write_onnx

    if model.training or next(model.parameters()).dtype != torch.float32 or _device(model).type != "cpu":
        model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    wrapper = NetworkOutputs(model).eval()
    write_onnx(
        wrapper,
        path,
        example=torch.zeros(2, 3, *image_size),
        input_name=INPUT,
        output_names=wrapper.output_names,
        dynamic_axes={0: torch.export.Dim("batch", min=1)},
    )


def _quantize(graph: Path, scratch: Path, calibration: np.ndarray) -> Path:
    """Static int8 quantization (QDQ, per-channel int8 weights, uint8 activations with ranges measured on
    ``calibration``). The classifier stays float32: 0.01% of the work, and the logits keep their resolution."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = scratch / "prepared.onnx"
    quant_pre_process(str(graph), str(prepared), skip_symbolic_shape=True)
    head = _head_nodes(onnx.load(str(prepared), load_external_data=False))

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = _calibration_batches(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    quantized = scratch / "int8.onnx"
    quantize_static(
        str(prepared),
        str(quantized),
        _Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=head,
    )
    return quantized


def _head_nodes(model) -> list[str]:
    """Names of the nodes between ``features`` and ``logits`` (the classifier)."""
    producers = {output: node for node in model.graph.node for output in node.output}

    def ancestors(tensor: str) -> set[str]:
        seen: set[str] = set()
        stack = [tensor]
        while stack:
            node = producers.get(stack.pop())
            if node is not None and node.name not in seen:
                seen.add(node.name)
                stack.extend(node.input)
        return seen

    outputs = {output.name for output in model.graph.output}
    if LOGITS not in outputs:
        return []
    return sorted(ancestors(LOGITS) - ancestors(FEATURES))


def _calibration_batches(images: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, len(images), _CALIBRATION_BATCH):
        batch = images[start : start + _CALIBRATION_BATCH]
        yield {INPUT: np.ascontiguousarray(2.0 * batch.transpose(0, 3, 1, 2) - 1.0, dtype=np.float32)}


def _check_calibration(images: np.ndarray | None, image_size: tuple[int, int]) -> np.ndarray:
    if images is None:
        raise ValueError(
            "int8 needs calibration images, typical of what you will classify: pass calibration= (an array "
            "[N, H, W, 3] in [0, 1], or image paths) to irv2.load, or --calibration to the command line"
        )
    array = np.asarray(images, dtype=np.float32)
    if array.ndim != 4 or array.shape[-1] != 3 or len(array) == 0:
        raise ValueError(f"calibration images must be a batch [N, H, W, 3] with N >= 1, got {array.shape}")
    if tuple(array.shape[1:3]) != image_size:
        raise ValueError(
            f"calibration images must be {image_size[0]} x {image_size[1]}, the module's input size, got "
            f"{array.shape[1]} x {array.shape[2]}: pass image paths to have them preprocessed as the module's"
        )
    if array.min() < 0.0 or array.max() > 1.0:
        raise ValueError("calibration images must have values in [0, 1], as the module's input: divide by 255")
    if len(array) < 8:
        warnings.warn(
            f"int8 calibrated on {len(array)} images: activation ranges from so few images may clip yours; "
            "32-128 typical images are better",
            RuntimeWarning,
            stacklevel=6,  # past the engine's constructor and builder, and irv2.load: the caller's line
        )
    return array


def _cache_key(
    model: InceptionResNetV2, precision: str, calibration: np.ndarray | None, image_size: tuple[int, int]
) -> str:
    """Digest of everything the cached file depends on: weights, precision, calibration, input size and the
    library versions."""
    import onnxruntime

    calibrated = images_sha256(calibration) if precision == "int8" and calibration is not None else "-"
    fields = (
        f"{_ENGINE_FORMAT} irv2 {__version__} torch {torch.__version__} ort {onnxruntime.__version__} {precision}",
        f"weights {weights_sha256(model)} calibration {calibrated} size {image_size[0]}x{image_size[1]}",
    )
    return hashlib.sha256("\n".join(fields).encode()).hexdigest()[:32]


def images_sha256(images: np.ndarray) -> str:
    """The sha256 of a calibration set (its shape and float32 values)."""
    array = np.ascontiguousarray(images, dtype=np.float32)
    return hashlib.sha256(f"{list(array.shape)}\n".encode() + array.tobytes()).hexdigest()


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
