"""Whether splitting a batch across OpenVINO's streams pays on this CPU: irv2's OpenVINO engine as it runs
batches (THROUGHPUT hint, one part per stream, an async infer queue) against the same IR in one LATENCY
stream, both fed the network's own input; then ``module(images)`` as users call it (the same split, plus
irv2's work around the network: the weights check, the [0, 1] -> [-1, 1] scaling and layout) and single images.

    .venv/bin/python benchmarks/openvino_streams.py [--dtype bfloat16] [--batch 16] [--rounds 4]

Seeded random weights with BatchNorm measured on the bundled photos (speed does not depend on the values).
The three ways alternate within each round, so the machine's drift touches them alike; the median is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("IRV2_HOME", tempfile.mkdtemp(prefix="irv2-streams-"))

    import irv2
    from irv2.bench.runner import machine_info
    from irv2.bench.synthetic import calibrated_random_module
    from irv2.engine.onnx_graph import LOGITS
    from irv2.engine.openvino_engine import _compile

    path = irv2.save(calibrated_random_module(), tempfile.mkdtemp() + "/random-irv2")
    module = irv2.load(path, engine="openvino", dtype=args.dtype)
    engine = module.engine
    streams = engine._streams(engine.compiled)
    latency = _compile(engine.path, args.dtype)
    request = latency.create_infer_request()
    images = np.random.default_rng(0).random((args.batch, 299, 299, 3), dtype=np.float32)
    nchw = np.ascontiguousarray(2 * images.transpose(0, 3, 1, 2) - 1)

    def one_stream() -> None:
        request.infer({"x": nchw})

    def across_streams() -> None:
        engine._run_streams(nchw, LOGITS, streams)

    def as_irv2_runs() -> None:
        module(images)

    def single_images() -> None:
        for i in range(args.batch):
            module(images[i : i + 1])

    ways = {"latency, one stream": one_stream, f"split across {streams} streams": across_streams}
    ways["irv2 as it runs"] = as_irv2_runs
    ways["irv2, one image per call"] = single_images
    rates: dict[str, list[float]] = {name: [] for name in ways}
    for run in ways.values():
        run()  # warm-up
    for _ in range(args.rounds):
        for name, run in ways.items():
            started = time.perf_counter()
            run()
            rates[name].append(args.batch / (time.perf_counter() - started))
    report = {
        "machine": machine_info(torch.device("cpu")),
        "dtype": args.dtype,
        "batch": args.batch,
        "streams": streams,
        "images_per_s": {name: round(float(np.median(r)), 2) for name, r in rates.items()},
    }
    base = report["images_per_s"]["latency, one stream"]
    report["x_one_stream"] = {name: round(rate / base, 3) for name, rate in report["images_per_s"].items()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
