"""One engine's measurement, run in a process of its own by ``benchmarks/peers.py``.

    python benchmarks/peer_engines.py ENGINE WORKDIR --batch-sizes 1,8,32 --seconds 4

Prints one JSON object: throughput and latency per batch size, and the logits on the test photos (for the
accuracy comparison). A fresh process per engine keeps thread pools, caches and allocators from one engine
out of another's figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _time(run, batch: np.ndarray, seconds: float) -> dict:
    for _ in range(2):  # warm-up: kernel selection, JIT (oneDNN Graph compiles on the second call), allocation
        run(batch)
    times = []
    started = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - begin)
    median = statistics.median(times)
    return {"batch_size": len(batch), "images_per_s": len(batch) / median, "latency_ms_p50": median * 1e3}


# Each factory returns (run: NHWC float32 [0, 1] batch -> logits, description). Inputs are converted to what
# the engine takes natively (NCHW, [-1, 1]) outside the timed call where the engine allows it.


def irv2_engine(workdir: Path, dtype: str, engine: str):
    import torch

    import irv2

    # The export (and quantization) happens in load, outside the timed runs, as a user's first load does it.
    os.environ["IRV2_HOME"] = str(workdir / "irv2-home")
    calibration = np.load(workdir / "calibration.npy") if dtype == "int8" else None
    module = irv2.load(workdir / "irv2", dtype=dtype, engine=engine, calibration=calibration)

    def run(images):
        with torch.inference_mode():
            return module(torch.from_numpy(images)).float().numpy()

    chosen = f" ({module.engine_name})" if engine == "auto" else ""
    return run, f"irv2 {engine}{chosen} {dtype}"


def timm_engine(workdir: Path, dtype: str):
    import timm
    import torch
    from safetensors.torch import load_file

    model = timm.create_model("inception_resnet_v2", pretrained=False, num_classes=1001)
    model.load_state_dict(load_file(workdir / "timm.safetensors"))
    model = model.eval().to(memory_format=torch.channels_last)
    autocast = dtype == "bfloat16"

    def run(images):
        x = torch.from_numpy(2 * images - 1).permute(0, 3, 1, 2)  # channels-last view of NHWC
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            return model(x).float().numpy()

    return run, f"timm {timm.__version__} eager channels-last {'bf16 autocast' if autocast else 'fp32'}"


def timm_compiled_engine(workdir: Path, dtype: str):
    import timm
    import torch
    from safetensors.torch import load_file

    model = timm.create_model("inception_resnet_v2", pretrained=False, num_classes=1001)
    model.load_state_dict(load_file(workdir / "timm.safetensors"))
    compiled = torch.compile(model.eval().to(memory_format=torch.channels_last))

    def run(images):
        x = torch.from_numpy(2 * images - 1).permute(0, 3, 1, 2)
        with torch.inference_mode():
            return compiled(x).float().numpy()

    return run, f"timm {timm.__version__} torch.compile fp32"


def keras_engine(workdir: Path, dtype: str):
    import keras
    import tensorflow as tf

    model = keras.models.load_model(workdir / "keras.keras", compile=False)

    @tf.function(jit_compile=False, reduce_retracing=True)
    def forward(x):
        logits, _features = model(2.0 * x - 1.0, training=False)  # the reference model has both outputs
        return logits

    def run(images):
        return forward(tf.constant(images)).numpy()

    return run, f"Keras {keras.__version__} on TensorFlow {tf.__version__} (tf.function)"


def onnxruntime_engine(workdir: Path, dtype: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(workdir / "model.onnx"), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(images):
        x = np.ascontiguousarray((2 * images - 1).transpose(0, 3, 1, 2))
        return session.run(None, {name: x})[0]

    return run, f"ONNX Runtime {ort.__version__} fp32, all graph optimisations"


def openvino_engine(workdir: Path, dtype: str):
    import openvino as ov

    core = ov.Core()
    model = core.read_model(workdir / "model.onnx")
    # LATENCY: one stream on all cores, as every engine here runs one call at a time. THROUGHPUT splits the
    # cores into streams that only parallel requests use: one synchronous request then runs on one core
    # (measured here: f32 4.1 img/s against 8.0, bf16 8.0 against 15.4; the first peers runs made that mistake).
    config = {"PERFORMANCE_HINT": "LATENCY"}
    if dtype == "int8":
        # As a user quantizes with NNCF's defaults, on the same eight calibration photos as irv2's int8; the
        # float parts then run in OpenVINO's default precision for the CPU.
        import nncf

        calibration = np.load(workdir / "calibration.npy")
        items = [np.ascontiguousarray((2 * image - 1).transpose(2, 0, 1)[None]) for image in calibration]
        with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: stdout carries the result
            model = nncf.quantize(model, nncf.Dataset(items), subset_size=len(items))
        hint = "int8"
    else:
        hint = "bf16" if dtype == "bfloat16" else "f32"
        config["INFERENCE_PRECISION_HINT"] = hint
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()

    def run(images):
        x = np.ascontiguousarray((2 * images - 1).transpose(0, 3, 1, 2))
        return request.infer({0: x})[compiled.output(0)].copy()

    return run, f"OpenVINO {ov.__version__} CPU {hint}" + (" (NNCF)" if dtype == "int8" else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    factories = {
        "irv2": lambda: irv2_engine(args.workdir, args.dtype, "torch"),
        "irv2-plain": lambda: irv2_engine(args.workdir, args.dtype, "plain"),
        "irv2-compiled": lambda: irv2_engine(args.workdir, args.dtype, "compiled"),
        "irv2-torchscript": lambda: irv2_engine(args.workdir, args.dtype, "torchscript"),
        "irv2-onnxruntime": lambda: irv2_engine(args.workdir, args.dtype, "onnxruntime"),
        "irv2-openvino": lambda: irv2_engine(args.workdir, args.dtype, "openvino"),
        "irv2-auto": lambda: irv2_engine(args.workdir, args.dtype, "auto"),
        "timm": lambda: timm_engine(args.workdir, args.dtype),
        "timm-compiled": lambda: timm_compiled_engine(args.workdir, args.dtype),
        "keras": lambda: keras_engine(args.workdir, args.dtype),
        "onnxruntime": lambda: onnxruntime_engine(args.workdir, args.dtype),
        "openvino": lambda: openvino_engine(args.workdir, args.dtype),
    }
    started = time.perf_counter()
    run, description = factories[args.engine]()
    setup_s = time.perf_counter() - started
    photos = np.load(args.workdir / "photos.npy")
    logits = run(photos)
    rng = np.random.default_rng(0)
    rows = []
    for size in (int(n) for n in args.batch_sizes.split(",")):
        batch = rng.random((size, 299, 299, 3), dtype=np.float32)
        rows.append(_time(run, batch, args.seconds))
    json.dump(
        {"engine": args.engine, "dtype": args.dtype, "description": description, "setup_s": setup_s,
         "results": rows, "logits": np.asarray(logits, np.float64).tolist()},
        sys.stdout,
    )  # fmt: skip


if __name__ == "__main__":
    main()
