"""What a call costs beside the network: the weights check every engine makes before each call.

Every engine keeps a fused, traced or exported copy of the plain network and checks, before each call, that
the network's weights have not changed since (``irv2.engine.fingerprint.model_fingerprint``: one walk over
the module tree's tables, no process-wide hook). This measures that check against a batch-1 forward pass of
the default engine, in float32 and (where the CPU has bfloat16 instructions) bfloat16, on random weights
whose BatchNorm statistics fit real photos.

    .venv/bin/python benchmarks/call_overhead.py [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import irv2
from irv2.bench.runner import machine_info
from irv2.bench.synthetic import calibrated_random_module
from irv2.engine.fingerprint import model_fingerprint
from irv2.engine.precision import cpu_has_fast_bfloat16


def _median_seconds(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_flush_denormal(True)  # as the CLI does: random weights must not measure the subnormal path
    with tempfile.TemporaryDirectory() as scratch:
        path = irv2.save(calibrated_random_module(), Path(scratch) / "random")
        rows = []
        for dtype in ["float32", *(["bfloat16"] if cpu_has_fast_bfloat16() else [])]:
            module = irv2.load(path, dtype=dtype)
            image = module.preprocess(irv2.sample_image())[None]
            for _ in range(3):
                module(image)  # warm: kernels created, weights packed
            forward = _median_seconds(lambda module=module, image=image: module(image), 20)
            check = _median_seconds(lambda module=module: model_fingerprint(module.model), 500)
            rows.append(
                {
                    "dtype": dtype,
                    "batch_1_call_ms": forward * 1e3,
                    "weights_check_ms": check * 1e3,
                    "share_of_call": check / forward,
                }
            )
            print(f"{dtype:9} batch-1 call {forward * 1e3:7.1f} ms   weights check {check * 1e3:5.2f} ms "
                  f"({100 * check / forward:.1f}%)")  # fmt: skip
    report = {"machine": machine_info(torch.device("cpu")), "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
