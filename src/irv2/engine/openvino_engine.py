"""``OpenVinoEngine``: the network run by Intel's OpenVINO on the CPU, in float32, bfloat16 or int8 (NNCF).

Why: on CPUs with AMX or AVX-512, OpenVINO's kernels come closer to the CPU's matrix-product ceiling than
eager PyTorch does, above all in bfloat16 and int8 (docs/performance.md measures the engines side by side).
irv2 keeps its exact readers, API, pipelines and server, and lets OpenVINO run the network.

- float32 sets ``INFERENCE_PRECISION_HINT`` to f32 explicitly: on AMX CPUs OpenVINO would otherwise run
  bfloat16 and be silently inexact.
- bfloat16 is the same float32 model compiled with the bf16 hint (rounding happens inside OpenVINO).
- int8 is NNCF's post-training quantization calibrated on the user's images (``calibration=``), with its
  default (fast) bias correction, up to 300 calibration images, and the classifier kept in float. Its accurate
  bias correction was measured beside it: 8.8x the time and no lower error (docs/performance.md, "int8").
- A single image runs on one stream with the LATENCY hint (the whole CPU for one call). A batch is split across
  the streams of a second compilation with the THROUGHPUT hint, run at once through an async infer queue:
  that is how batch jobs and the server, which call with batches, use every stream that pays off on the CPU.

The converted model (OpenVINO IR: ``model.xml`` + ``model.bin``) is cached per weights, int8 calibration set,
input size and library versions as a folder ``$IRV2_HOME/engines/<key>.<float|int8>.openvino`` with the
files' sha256 beside them. It is written under a lock into a scratch folder and renamed into place; on
opening, a folder whose files do not match their digests (or that OpenVINO cannot read) is removed and
rebuilt, never trusted. Like every engine it follows ``module.model``: changed weights are converted again at
the next call. Needs the ``openvino`` extra (openvino; nncf for int8).

What ran is read back from the compiled model: a bfloat16 engine that OpenVINO compiled in f32 (a CPU without
bfloat16 instructions) is refused, never reported as bfloat16. Nothing here imports torch at import time.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._version import __version__
from ..errors import MissingDependencyError, OptionError
from ..hub.digests import file_sha256
from ..notices import notify, quiet
from .calibration import images_sha256
from .io_names import ENGINE_INPUT
from .precision import NO_BFLOAT16, Precision
from .runtime_engine import RuntimeEngine, float32_size, on_cache_full, runtime_threads

if TYPE_CHECKING:
    from ..model import InceptionResNetV2

INPUT = ENGINE_INPUT
_FORMAT = 1  # bump when the cached folder's layout changes
_CHECKSUMS = "sha256.json"
_FILES = ("model.xml", "model.bin")
# This many calibration images at most (NNCF's default subset).
_MAX_CALIBRATION_IMAGES = 300
_HINTS = {"float32": "f32", "bfloat16": "bf16"}


class OpenVinoEngine(RuntimeEngine):
    """The inference path of an ``irv2.Module`` through OpenVINO (CPU): ``float32`` (exact to ~1e-6),
    ``bfloat16`` or ``int8`` (NNCF, calibrated on ``calibration``). Arguments: see :class:`RuntimeEngine`."""

    runtime = "OpenVINO"

    @classmethod
    def runtime_version(cls) -> str:
        return _versions()  # NNCF's too: it made the int8 files

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._throughput: tuple[Path, Any, int] | None = None  # (IR folder, compiled model, its streams)
        # Infer requests are not thread-safe: each thread has its own (the server runs inference on several).
        self._local = threading.local()

    def _require(self, precision: Precision) -> None:
        if precision.name == "int8" and importlib.util.find_spec("nncf") is None:
            raise MissingDependencyError("int8 on the OpenVINO engine needs nncf: pip install 'irv2[openvino]'")

    def _run(self, batch: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
        compiled = self.compiled
        batch = np.ascontiguousarray(batch)
        streams = self._streams(compiled) if len(batch) > 1 else 1
        if streams > 1:
            return self._run_streams(batch, names, streams)
        request = self._thread_state("request", compiled, compiled.create_infer_request)
        # share_inputs: OpenVINO reads the batch where it is instead of copying it into the request first.
        results = request.infer({self.input_name: batch}, share_inputs=True)
        # The request reuses its output memory on the next call: copy.
        return [np.array(results[compiled.output(name)], dtype=np.float32, copy=True) for name in names]

    def _streams(self, compiled: Any) -> int:
        """How many streams a batch is split across: OpenVINO's THROUGHPUT choice for this CPU (2 on 2 cores),
        compiled on the first batch call (a second compiled model beside the LATENCY one)."""
        if self._throughput is None or self._throughput[0] != self.path:
            throughput = _compile(self.path, self.precision.name, hint="THROUGHPUT")
            self._throughput = (self.path, throughput, int(throughput.get_property("NUM_STREAMS")))
        return self._throughput[2]

    def _run_streams(self, batch: np.ndarray, names: tuple[str, ...], streams: int) -> list[np.ndarray]:
        """``batch`` split into one part per stream, run at once through an async infer queue, joined again."""
        import openvino as ov

        _, throughput, _ = self._throughput
        queue = self._thread_state("queue", throughput, lambda: ov.AsyncInferQueue(throughput, streams))
        parts = np.array_split(batch, min(streams, len(batch)))
        outputs: list[list[np.ndarray] | None] = [None] * len(parts)
        ports = [throughput.output(name) for name in names]

        def collect(request: Any, index: int) -> None:
            outputs[index] = [np.array(request.get_tensor(port).data, dtype=np.float32, copy=True) for port in ports]

        queue.set_callback(collect)
        for index, part in enumerate(parts):
            queue.start_async({self.input_name: part}, userdata=index, share_inputs=True)  # the batch outlives wait_all
        queue.wait_all()
        return [np.concatenate([part[i] for part in outputs]) for i in range(len(names))]

    def _thread_state(self, kind: str, compiled: Any, make: Any) -> Any:
        """This thread's infer request (or queue) for ``compiled``, made anew when the model was rebuilt."""
        held = getattr(self._local, kind, None)
        if held is None or held[0] is not compiled:
            held = (compiled, make())
            setattr(self._local, kind, held)
        return held[1]

    @property
    def compiled(self) -> Any:
        """The compiled model for the model's current weights (built or re-opened when they change)."""
        return self.opened

    def _convert(self, model: InceptionResNetV2) -> Path:
        return cached_ir(model, self.precision.name, self.calibration, self.image_size)

    def _open(self, path: Path) -> Any:
        return _compile(path, self.precision.name)


def _versions() -> str:
    """OpenVINO's version (and NNCF's, which quantizes int8), read without importing them."""
    try:
        nncf = metadata.version("nncf")
    except metadata.PackageNotFoundError:
        nncf = "-"
    return f"openvino {metadata.version(OpenVinoEngine.spec().library)} nncf {nncf}"


def _compile(folder: Path, precision: str, *, hint: str = "LATENCY") -> Any:
    """The IR in ``folder`` compiled for the CPU on every core PyTorch uses (all physical cores without
    PyTorch), in ``precision`` (int8 models keep OpenVINO's own choice for their float parts). LATENCY (single
    calls): one stream, so one call gets the whole CPU. THROUGHPUT (batches): as many streams as OpenVINO finds
    pay off here, each taking part of a batch. OptionError when OpenVINO compiled another precision than the
    one asked for (bfloat16 on a CPU without bfloat16 instructions runs f32)."""
    import openvino as ov

    config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
    threads = runtime_threads()
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    if precision in _HINTS:
        config["INFERENCE_PRECISION_HINT"] = _HINTS[precision]
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(folder / "model.xml")), "CPU", config)
    if precision in _HINTS and compiled_precision(compiled) != precision:
        ran = compiled_precision(compiled)
        raise OptionError(NO_BFLOAT16 if precision == "bfloat16" else f"OpenVINO compiled {ran}, not {precision}")
    return compiled


def compiled_precision(compiled: Any) -> str:
    """The precision OpenVINO compiled the float parts of ``compiled`` in (``float32``, ``bfloat16``, ``float16``),
    read back from the compiled model: what ran, whatever was asked for."""
    return (
        compiled.get_property("INFERENCE_PRECISION_HINT")
        .get_type_name()
        .replace("f32", "float32")
        .replace("bf16", "bfloat16")
        .replace("f16", "float16")
    )


def cached_ir(
    model: InceptionResNetV2, precision: str, calibration: np.ndarray | None, image_size: tuple[int, int]
) -> Path:
    """The cached IR folder for ``model`` (converted, and quantized for int8, first if missing or damaged)."""
    from ..hub import FileLock
    from ..hub.cache import irv2_home

    folder = irv2_home() / "engines"
    folder.mkdir(parents=True, exist_ok=True)
    kind = "int8" if precision == "int8" else "float"  # float32 and bfloat16 compile the same IR
    path = folder / f"{_cache_key(model, kind, calibration, image_size)}.{kind}.openvino"
    with FileLock(path):
        if path.is_dir():
            problem = _damage(path)
            if problem is None:
                return path
            warnings.warn(
                f"{path}: damaged cached OpenVINO model ({problem}); converting it again",
                RuntimeWarning,
                stacklevel=2,
            )
            shutil.rmtree(path)
        what = (
            "quantizing the network to int8 for OpenVINO on your calibration images"
            if kind == "int8"
            else ("preparing the OpenVINO engine for these weights")
        )
        notify(f"{what} (once; cached in {folder})")
        # An int8 model holds less than the float32 weights, by how much depends on NNCF's choices: no number.
        with on_cache_full(path, float32_size(model) if kind == "float" else None):
            scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))
            try:
                ir = scratch / "ir"
                _write_ir(model, ir, kind, calibration, image_size)
                os.replace(ir, path)  # a folder appears whole under its final name, or not at all
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    return path


def _damage(path: Path) -> str | None:
    """What is wrong with a cached IR folder (a missing file, a digest that does not match), or None."""
    try:
        expected = json.loads((path / _CHECKSUMS).read_text())
    except (OSError, ValueError):
        return f"no readable {_CHECKSUMS}"
    for name in _FILES:
        if not (path / name).is_file():
            return f"{name} is missing"
        if file_sha256(path / name) != expected.get(name):
            return f"{name} does not match its sha256"
    return None


def _write_ir(
    model: InceptionResNetV2, folder: Path, kind: str, calibration: np.ndarray | None, image_size: tuple[int, int]
) -> None:
    import openvino as ov

    ir = convert(model, image_size)
    if kind == "int8":
        ir = _quantize(ir, calibration)
    folder.mkdir()
    ov.save_model(ir, str(folder / "model.xml"), compress_to_fp16=False)
    checksums = {name: file_sha256(folder / name) for name in _FILES}
    (folder / _CHECKSUMS).write_text(json.dumps(checksums, indent=1) + "\n")


def convert(model: InceptionResNetV2, image_size: tuple[int, int]) -> Any:
    """``model`` as an OpenVINO model: input ``x`` NCHW in [-1, 1] with any batch, outputs ``logits`` (with a
    classifier) and ``features``, in float32.

    Read by OpenVINO's ONNX front end from the graph ``onnx_builder`` writes from the fused weights, rather than
    traced by its PyTorch front end: 1.2 s against 9.3 s on 2 idle cores (55 s on busy ones), the same 244
    convolutions, and float32 results within 5e-6 of the plain network as the traced graph's were
    (benchmarks/openvino_conversion.py, docs/openvino_conversion_cpu.json). The graph is handed over as bytes:
    no temporary file to write, or to fail to delete."""
    import copy

    import openvino as ov
    import torch

    from .io_names import FEATURES, LOGITS
    from .onnx_builder import network_onnx

    if model.training or next(model.parameters()).dtype != torch.float32 or _device(model).type != "cpu":
        model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    # One conv per branch opening (merge=False), as the traced graph had them: NNCF's int8 settings and the
    # engines' speed were measured on that graph, and OpenVINO's CPU plugin does its own fusing.
    graph = network_onnx(model, image_size, merge=False).SerializeToString()
    ir = ov.Core().read_model(graph)
    del graph  # 220 MB, copied into the model's constants
    ir.inputs[0].get_tensor().set_names({INPUT})
    names = (LOGITS, FEATURES) if model.num_classes else (FEATURES,)
    for output, name in zip(ir.outputs, names, strict=True):
        output.get_tensor().set_names({name})
    return ir


def _quantize(ir: Any, calibration: np.ndarray) -> Any:
    """NNCF's post-training int8 quantization with its default (fast) bias correction; the classifier (the one
    MatMul) stays float: 0.01% of the work, and the logits keep their resolution.

    ``fast_bias_correction=False`` (NNCF's accurate mode) was measured against it on the calibrated test weights
    (benchmarks/int8_settings.py, docs/int8_settings_cpu.json): 265 s against 30 s to quantize, and a mean
    held-out logit error of 0.098 against 0.085, so the default stays."""
    import nncf

    # NNCF logs its steps and draws progress bars on stdout, which may be a pipe holding the CLI's results: its
    # bars go to stderr where a person watches it, else nowhere.
    nncf.set_log_level(logging.ERROR)
    images = calibration[:_MAX_CALIBRATION_IMAGES]
    dataset = nncf.Dataset(
        [np.ascontiguousarray(2.0 * image.transpose(2, 0, 1)[None] - 1.0, dtype=np.float32) for image in images]
    )
    shown = sys.stderr.isatty() and not quiet()
    with contextlib.redirect_stdout(sys.stderr if shown else io.StringIO()):
        return nncf.quantize(
            ir,
            dataset,
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(images),
            fast_bias_correction=True,
            ignored_scope=nncf.IgnoredScope(types=["MatMul"], validate=False),
        )


def _cache_key(model: InceptionResNetV2, kind: str, calibration: np.ndarray | None, image_size: tuple[int, int]) -> str:
    """Digest of everything the cached IR depends on: weights, int8 calibration, input size, library versions."""
    from .fingerprint import weights_sha256

    calibrated = images_sha256(calibration[:_MAX_CALIBRATION_IMAGES]) if kind == "int8" else "-"
    fields = (
        f"{_FORMAT} irv2 {__version__} {_versions()} {kind}",
        f"weights {weights_sha256(model)} calibration {calibrated} size {image_size[0]}x{image_size[1]}",
    )
    return hashlib.sha256("\n".join(fields).encode()).hexdigest()[:32]


def _device(model: Any) -> Any:
    return next(model.parameters()).device
