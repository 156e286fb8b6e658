"""``OnnxRuntimeEngine``: the network run by ONNX Runtime on the CPU, in float32.

Why a second engine: on some CPUs ONNX Runtime's MLAS kernels run the float32 network faster than oneDNN under
PyTorch (docs/performance.md, "Which engine runs", measures it with the machine and the command). Its int8
(static QDQ quantization) was removed: measured beside OpenVINO + NNCF it ran at a third of their speed and
below PyTorch's bfloat16, so it won nowhere.

The graph (NCHW in [-1, 1] → ``logits``, ``features``) is converted once per weights, input size and library
versions and cached as ``$IRV2_HOME/engines/<key>.float32.onnx``; later loads only open it (without torch,
through ``irv2.engine.prepared``). Like ``InferenceEngine``, the engine follows ``module.model``: changed
weights are converted again at the next call. Needs the ``onnx`` extra.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._version import __version__
from ..atomic import atomic_path, write_text
from ..hub.digests import file_sha256
from ..notices import notify
from .io_names import ENGINE_INPUT
from .runtime_engine import RuntimeEngine, float32_size, on_cache_full, runtime_threads

if TYPE_CHECKING:
    from ..model import InceptionResNetV2

INPUT = ENGINE_INPUT
_ENGINE_FORMAT = 2  # bump when the cached graph's layout changes (2: built from the fused weights)


class OnnxRuntimeEngine(RuntimeEngine):
    """The inference path of an ``irv2.Module`` through ONNX Runtime (CPU), in ``float32`` (exact to ~1e-6).
    Arguments: see :class:`RuntimeEngine`."""

    runtime = "ONNX Runtime"

    def _run(self, batch: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
        return self.session.run(list(names), {self.input_name: batch})

    @property
    def session(self) -> Any:
        """The ONNX Runtime session for the model's current weights (built or re-opened when they change)."""
        return self.opened

    def _convert(self, model: InceptionResNetV2) -> Path:
        return build_engine_file(model, self.image_size)

    def _open(self, path: Path) -> Any:
        return open_session(path)


def open_session(path: Path) -> Any:
    """An ONNX Runtime CPU session on ``path`` with all graph optimisations, on PyTorch's thread count when
    PyTorch is loaded (else ONNX Runtime's default, one per physical core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = runtime_threads()
    options.log_severity_level = 3  # errors only: its warnings are about graph rewrites, not the user's input
    if "torch" in sys.modules:
        # ONNX Runtime's workers spin after a run by default. Where PyTorch's OpenMP threads do work between
        # runs on the same cores, one spinning worker stalls them: measured on 2 cores, a batch-1 call took 25 ms
        # longer. Spinning during a run is kept; it stops when the run ends. Without PyTorch in the process
        # (a prepared file, an export) ONNX Runtime's defaults stand, as a script of its own would have them.
        options.add_session_config_entry("session.force_spinning_stop", "1")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def build_engine_file(model: InceptionResNetV2, image_size: tuple[int, int]) -> Path:
    """The cached float32 ONNX file for ``model``, converted first if missing or damaged (saying so in one line).

    Written under a temporary name and renamed into place, under a lock: concurrent processes build it once,
    and an interrupted build leaves nothing that a later load would trust. Its sha256 is kept beside it
    (``<file>.sha256``) and checked here, so a file changed since (cut short, overwritten) is converted again.
    A full disk raises DiskFullError (nothing of the build is kept; it says how much room the file needs).
    """
    from ..hub import FileLock
    from ..hub.cache import irv2_home

    folder = irv2_home() / "engines"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_cache_key(model, image_size)}.float32.onnx"
    checksum = path.with_name(f"{path.name}.sha256")
    with FileLock(path):
        if path.is_file() and checksum.is_file() and checksum.read_text().strip() == file_sha256(path):
            return path
        notify(f"preparing the ONNX Runtime engine for these weights (once; cached in {folder})")
        with (
            on_cache_full(path, float32_size(model)),
            tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as scratch,
        ):
            graph = Path(scratch) / "float32.onnx"
            _export_graph(model, graph, image_size)
            # The checksum before the file: when the disk fills up writing it, the graph is still in the scratch
            # folder, deleted with it, and no file that nothing would trust is left taking the space.
            write_text(checksum, file_sha256(graph) + "\n")
            with atomic_path(path) as staged:
                os.replace(graph, staged)
    return path


def _export_graph(model: InceptionResNetV2, path: Path, image_size: tuple[int, int]) -> None:
    import copy

    import torch

    from .onnx_builder import write_network_onnx

    parameter = next(model.parameters())
    if model.training or parameter.dtype != torch.float32 or parameter.device.type != "cpu":
        model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    write_network_onnx(model, path, image_size)


def _cache_key(model: InceptionResNetV2, image_size: tuple[int, int]) -> str:
    """Digest of everything the cached file depends on: weights, input size and the library versions."""
    from .fingerprint import weights_sha256

    fields = (
        f"{_ENGINE_FORMAT} irv2 {__version__} onnx {metadata.version('onnx')} "
        f"ort {OnnxRuntimeEngine.runtime_version()} float32",
        f"weights {weights_sha256(model)} size {image_size[0]}x{image_size[1]}",
    )
    return hashlib.sha256("\n".join(fields).encode()).hexdigest()[:32]
