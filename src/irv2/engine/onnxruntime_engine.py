"""``OnnxRuntimeEngine``: the network run by ONNX Runtime on the CPU, in float32.

Why a second engine: on some CPUs ONNX Runtime's MLAS kernels run the float32 network faster than oneDNN under
PyTorch (docs/performance.md, "Which engine runs", measures it with the machine and the command). Its int8
(static QDQ quantization) was removed: measured beside OpenVINO + NNCF it ran at a third of their speed and
below PyTorch's bfloat16, so it won nowhere.

The graph (NCHW in [-1, 1] → ``logits``, ``features``) is exported once per weights, input size and library
versions and cached as ``$IRV2_HOME/engines/<key>.float32.onnx``; later loads only open it. Like
``InferenceEngine``, the engine follows ``module.model``: changed weights are exported again at the next call.
Needs the ``onnx`` extra.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..atomic import atomic_path
from ..model import InceptionResNetV2
from .fingerprint import model_fingerprint, weights_sha256
from .onnx_graph import FEATURES, LOGITS
from .runtime_engine import RuntimeEngine

INPUT = "x"
_ENGINE_FORMAT = 1  # bump when the cached graph's layout changes


class OnnxRuntimeEngine(RuntimeEngine):
    """The inference path of an ``irv2.Module`` through ONNX Runtime (CPU), in ``float32`` (exact to ~1e-6).
    Arguments: see :class:`RuntimeEngine`."""

    name = "onnxruntime"
    runtime = "ONNX Runtime"
    extra = "onnx"
    dtypes = ("float32",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._session = None
        self._built_for: int | None = None

    def _run(self, batch: np.ndarray, pre_logits: bool, device: torch.device) -> torch.Tensor:
        name = FEATURES if pre_logits or not self.model.num_classes else LOGITS
        (out,) = self.session.run([name], {INPUT: batch})
        return torch.from_numpy(out).to(device)

    def build(self) -> Path:
        """Export the graph now if it is not cached yet, open it; returns the cached file."""
        self.session  # noqa: B018 (the property builds)
        return self.path

    @property
    def session(self):
        """The ONNX Runtime session for the model's current weights (built or re-opened when they change)."""
        fingerprint = model_fingerprint(self.model)
        if self._session is None or self._built_for != fingerprint:
            self.path = build_engine_file(self.model, self.image_size)
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


def build_engine_file(model: InceptionResNetV2, image_size: tuple[int, int]) -> Path:
    """The cached float32 ONNX file for ``model``, exported first if missing.

    Written under a temporary name and renamed into place, under a lock: concurrent processes build it once,
    and an interrupted build leaves nothing that a later load would trust.
    """
    from ..hub import FileLock
    from ..hub.cache import irv2_home

    folder = irv2_home() / "engines"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_cache_key(model, image_size)}.float32.onnx"
    with FileLock(path):
        if path.is_file():
            return path
        with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as scratch:
            graph = Path(scratch) / "float32.onnx"
            _export_graph(model, graph, image_size)
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


def _cache_key(model: InceptionResNetV2, image_size: tuple[int, int]) -> str:
    """Digest of everything the cached file depends on: weights, input size and the library versions."""
    import onnxruntime

    fields = (
        f"{_ENGINE_FORMAT} irv2 {__version__} torch {torch.__version__} ort {onnxruntime.__version__} float32",
        f"weights {weights_sha256(model)} size {image_size[0]}x{image_size[1]}",
    )
    return hashlib.sha256("\n".join(fields).encode()).hexdigest()[:32]


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
