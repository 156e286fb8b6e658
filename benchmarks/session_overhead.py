"""What irv2 adds to a runtime's own call: ``module(images)`` on the ONNX Runtime and OpenVINO engines against a
bare session of the same runtime on the same file, alternating in blocks, at batch 1 and batch 8.

    .venv/bin/python benchmarks/session_overhead.py [--calls 30] [--out docs/session_overhead_cpu.json]

The bare session is what a user's own script would do: it opens irv2's cached engine file itself (ONNX
Runtime's defaults with all graph optimisations; OpenVINO compiled with the f32 hint) and runs an input it
prepared beforehand (NCHW in [-1, 1]), so the ratio counts everything irv2 does per call: input checks, scaling
and layout in numpy, the weights check, output copies. The weights are prepared in a child process, so this
process, like ``irv2 classify`` from a prepared file, never imports torch. Ratios above 1 mean irv2 is faster
(OpenVINO: irv2 splits a batch across the CPU's streams).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report_support import machine, publish

_PREPARE = """
import sys, irv2
from irv2.bench.synthetic import calibrated_random_module
path = irv2.save(calibrated_random_module(), sys.argv[1])
for engine in ("onnxruntime", "openvino"):
    irv2.load(path, engine=engine)
"""


def _bare_onnxruntime(path: str):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(["logits"], {"x": x})[0]


def _bare_openvino(folder: str):
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(f"{folder}/model.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    output = compiled.output("logits")
    return lambda x: request.infer({"x": x})[output]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="calls of each, per batch size")
    parser.add_argument("--out")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="irv2-overhead-"))
    os.environ["IRV2_HOME"] = str(scratch / "home")
    os.environ.pop("IRV2_ENGINE", None)
    weights = scratch / "random-irv2"
    subprocess.run([sys.executable, "-c", _PREPARE, str(weights)], check=True, timeout=1800)

    import numpy as np

    import irv2

    (onnx_file,) = glob.glob(str(scratch / "home" / "engines" / "*.float32.onnx"))
    (ir_folder,) = glob.glob(str(scratch / "home" / "engines" / "*.float.openvino"))
    bare = {"onnxruntime": _bare_onnxruntime(onnx_file), "openvino": _bare_openvino(ir_folder)}
    rng = np.random.default_rng(0)
    results = []
    for engine in ("onnxruntime", "openvino"):
        module = irv2.load(weights, engine=engine)
        for batch_size in (1, 8):
            images = rng.random((batch_size, 299, 299, 3), dtype=np.float32)
            prepared = np.ascontiguousarray(2.0 * images.transpose(0, 3, 1, 2) - 1.0, dtype=np.float32)
            np.testing.assert_allclose(module(images), bare[engine](prepared), rtol=0, atol=1e-4)
            timed: dict[str, list[float]] = {"irv2": [], "bare": []}
            for _ in range(2):  # warm-up
                module(images), bare[engine](prepared)
            # Alternating blocks of three calls, the first of each untimed: a runtime's worker threads spin for a
            # while after a call, and that would be charged to whichever session runs next.
            calls = {
                "irv2": lambda m=module, x=images: m(x),
                "bare": lambda run=bare[engine], x=prepared: run(x),
            }
            for _ in range(max(1, args.calls // 2)):
                for name, call in calls.items():
                    call()
                    for _ in range(2):
                        started = time.perf_counter()
                        call()
                        timed[name].append(time.perf_counter() - started)
            irv2_ms = statistics.median(timed["irv2"]) * 1e3
            bare_ms = statistics.median(timed["bare"]) * 1e3
            results.append(
                {
                    "engine": engine,
                    "batch_size": batch_size,
                    "irv2_ms": round(irv2_ms, 2),
                    "bare_ms": round(bare_ms, 2),
                    "speed_vs_bare": round(bare_ms / irv2_ms, 3),
                }
            )
            print(json.dumps(results[-1]), file=sys.stderr)
    report = {
        "command": f"benchmarks/session_overhead.py --calls {args.calls}",
        **machine(),
        "torch_imported": "torch" in sys.modules,
        "results": results,
    }
    publish(report, args.out)


if __name__ == "__main__":
    main()
