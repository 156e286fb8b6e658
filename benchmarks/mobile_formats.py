"""The phone-and-board exports side by side: each format and dtype's size, its logit error, and its batch-1
latency in its own runtime, beside ONNX Runtime on the ONNX export of the same network.

    .venv/bin/python benchmarks/mobile_formats.py [--repeat 20] [--out FILE]

One seeded random 1001-class network, its BatchNorm statistics measured on the bundled photo pair
(``irv2.bench.synthetic``), is exported with ``irv2.export`` to ``litert`` and ``executorch`` in float32 and
int8 (calibrated on the photo pair: the int8 figures show the method, not what ImageNet weights reach), and to
``onnx`` for the baseline. Each file is then read by its own runtime (``ai_edge_litert``'s ``Interpreter``,
``executorch.runtime``, ``onnxruntime``) with the machine's cores, and timed on one photo: runs alternate between
the formats, ``--repeat`` rounds after one warm-up, median reported. The error is ``max |export - irv2| /
max |irv2|`` of the logits on the photo pair, against irv2's float32. Prints JSON with the CPU named under
``machine``; ``--out FILE`` saves it too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import irv2
    from irv2.bench.runner import machine_info
    from irv2.bench.synthetic import calibrated_random_module
    from irv2.data import sample_photos
    from irv2.export.wrapper import export_wrapper, reference_outputs, relative_error

    photos = sample_photos()
    module = calibrated_random_module(photos)
    reference = reference_outputs(export_wrapper(module), photos)["logits"]
    scratch = Path(tempfile.mkdtemp(prefix="irv2-mobile-formats-"))
    runners, rows = {}, {}
    for format, suffix, dtype in (
        ("onnx", ".onnx", "float32"),
        ("litert", ".tflite", "float32"),
        ("litert", ".tflite", "int8"),
        ("executorch", ".pte", "float32"),
        ("executorch", ".pte", "int8"),
    ):
        name = f"{format} {dtype}"
        path = scratch / f"{format}-{dtype}{suffix}"
        start = time.perf_counter()
        calibration = photos if dtype == "int8" else None
        irv2.export(module, path, format=format, dtype=dtype, calibration=calibration, verify=False)
        seconds = time.perf_counter() - start
        run = _runner(format, path)
        logits = run(photos)
        rows[name] = {
            "export_s": round(seconds, 1),
            "size_mb": round(path.stat().st_size / 1e6, 1),
            "logits_error": float(f"{relative_error(logits, reference):.2g}"),
            "top1_agrees": bool(np.array_equal(logits.argmax(1), reference.argmax(1))),
        }
        runners[name] = run
    one = np.ascontiguousarray(photos[:1])
    times: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():
        run(one)  # warm-up: first-call allocations and kernel choice
    for _ in range(args.repeat):
        for name, run in runners.items():
            start = time.perf_counter()
            run(one)
            times[name].append(time.perf_counter() - start)
    for name in rows:
        rows[name]["batch1_ms"] = round(1000 * statistics.median(times[name]), 1)
    import ai_edge_litert
    import executorch
    import onnxruntime
    import tensorflow
    import torch

    machine = machine_info(torch.device("cpu"))
    versions = {"tensorflow": tensorflow.__version__, "onnxruntime": onnxruntime.__version__}
    versions["ai_edge_litert"] = getattr(ai_edge_litert, "__version__", _version("ai-edge-litert"))
    versions["executorch"] = getattr(executorch, "__version__", _version("executorch"))
    report = {"machine": machine, "versions": versions, "repeat": args.repeat, "formats": rows}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def _runner(format: str, path: Path):
    """A function images → logits that runs ``path`` in its format's own runtime, the file opened once."""
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda images: session.run(["logits"], {"images": images})[0]
    if format == "litert":
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_path=str(path), num_threads=os.cpu_count()).get_signature_runner("serving_default")
        return lambda images: runner(images=images)["logits"]
    import torch
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(str(path)).load_method("forward")
    return lambda images: np.asarray(method.execute([torch.from_numpy(images)])[0])


if __name__ == "__main__":
    main()
