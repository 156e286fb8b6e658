"""The way to the first answer, as a new user meets it: each step a fresh process, timed from launch to exit,
everything side by side and alternating round by round, medians reported with the CPU's name.

    .venv/bin/python benchmarks/cold_start.py [--rounds 5] [--int8-rounds 1] [--out docs/cold_start_cpu.json]

What runs, each round, in this order:
- ``import numpy, PIL.Image`` (the floor), ``import irv2``, ``irv2 --help``;
- per engine (onnxruntime, openvino, torch): a first ``irv2 classify`` on an empty ``IRV2_HOME`` (conversion
  included) and a warm one (the same command again);
- the 20-line reference script (benchmarks/scripts/reference_onnxruntime.py: onnxruntime, numpy, Pillow) on the
  same network's ONNX file and the same photo;
- ``irv2 serve`` from launch to a 200 from ``/v2/health/ready`` (warm cache, ONNX Runtime);
- int8 preparation: a first ``irv2 classify --dtype int8 --calibration ...`` on an empty cache (``--int8-rounds``).

The weights are seeded random full-size weights (BatchNorm statistics measured on the bundled photo) in an
irv2 module folder; the photo is the bundled one.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "scripts" / "reference_onnxruntime.py"
ENGINES = ("onnxruntime", "openvino", "torch")


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


def _serve_seconds(irv2: list[str], weights: str, env: dict[str, str], port: int) -> float:
    """From launching ``irv2 serve`` to its first 200 on /v2/health/ready."""
    started = time.perf_counter()
    server = subprocess.Popen(
        [*irv2, "serve", "-w", weights, "--engine", "onnxruntime", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        while time.perf_counter() - started < 300:
            if server.poll() is not None:
                raise RuntimeError(f"irv2 serve exited with status {server.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("irv2 serve did not become ready in 300 s")
    finally:
        server.terminate()
        server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--int8-rounds", type=int, default=1)
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--out", help="write the JSON here too")
    args = parser.parse_args()

    import irv2
    from irv2.bench.runner import machine_info
    from irv2.bench.synthetic import calibrated_random_module

    scratch = Path(tempfile.mkdtemp(prefix="irv2-cold-start-"))
    weights = str(irv2.save(calibrated_random_module(), scratch / "random-irv2"))
    photo = irv2.sample_image()
    python = [sys.executable]
    cli = [sys.executable, "-m", "irv2"]
    base = {key: value for key, value in os.environ.items() if key not in ("IRV2_ENGINE", "IRV2_HOME")}
    warm_home = scratch / "warm-home"
    warm = {**base, "IRV2_HOME": str(warm_home)}
    # Prepare the warm cache once per engine (and find the ONNX file the reference script runs).
    for engine in ENGINES:
        _timed([*cli, "classify", "-w", weights, "--engine", engine, photo, "-q"], warm)
    (onnx_file,) = glob.glob(str(warm_home / "engines" / "*.float32.onnx"))

    steps: dict[str, list[str]] = {
        "import numpy, PIL.Image": [*python, "-c", "import numpy, PIL.Image"],
        "import irv2": [*python, "-c", "import irv2"],
        "irv2 --help": [*cli, "--help"],
        "reference script (onnxruntime)": [*python, str(REFERENCE), onnx_file, photo],
    }
    times: dict[str, list[float]] = {}
    for round_number in range(args.rounds):
        for name, command in steps.items():
            times.setdefault(name, []).append(_timed(command, warm))
        for engine in ENGINES:
            classify = [*cli, "classify", "-w", weights, "--engine", engine, photo]
            fresh = scratch / f"fresh-{engine}-{round_number}"
            times.setdefault(f"first irv2 classify ({engine})", []).append(
                _timed(classify, {**base, "IRV2_HOME": str(fresh)})
            )
            shutil.rmtree(fresh, ignore_errors=True)
            times.setdefault(f"warm irv2 classify ({engine})", []).append(_timed(classify, warm))
        times.setdefault("irv2 serve to ready (onnxruntime)", []).append(_serve_seconds(cli, weights, warm, args.port))
    for round_number in range(args.int8_rounds):
        fresh = scratch / f"fresh-int8-{round_number}"
        command = [*cli, "classify", "-w", weights, "--dtype", "int8", "--calibration", photo, photo]
        times.setdefault("first irv2 classify (int8, openvino+nncf)", []).append(
            _timed(command, {**base, "IRV2_HOME": str(fresh)})
        )
        shutil.rmtree(fresh, ignore_errors=True)

    medians = {name: round(statistics.median(values), 3) for name, values in times.items()}
    ratios = {
        "import irv2 / import numpy, PIL.Image": medians["import irv2"] / medians["import numpy, PIL.Image"],
        "warm classify (onnxruntime) / reference script": medians["warm irv2 classify (onnxruntime)"]
        / medians["reference script (onnxruntime)"],
        "first classify (onnxruntime) / first classify (torch)": medians["first irv2 classify (onnxruntime)"]
        / medians["first irv2 classify (torch)"],
        "first classify (openvino) / first classify (torch)": medians["first irv2 classify (openvino)"]
        / medians["first irv2 classify (torch)"],
    }
    import torch

    report = {
        "command": f"benchmarks/cold_start.py --rounds {args.rounds} --int8-rounds {args.int8_rounds}",
        "machine": machine_info(torch.device("cpu")),
        "median_seconds": medians,
        "ratios": {name: round(value, 3) for name, value in ratios.items()},
        "all_seconds": {name: [round(value, 3) for value in values] for name, values in times.items()},
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
