"""What the automatic engine choice costs once: ``irv2.load`` of new weights on each engine (which converts
them and caches the result under ``$IRV2_HOME/engines``), then the same load again (which opens the cache).

    .venv/bin/python benchmarks/first_load.py [--engines torch,onnxruntime,openvino]

Seeded random full-size weights in an irv2 module folder and a fresh ``IRV2_HOME``; prints JSON seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="torch,onnxruntime,openvino")
    args = parser.parse_args()
    os.environ["IRV2_HOME"] = tempfile.mkdtemp(prefix="irv2-first-load-")

    import irv2
    from irv2.bench.runner import machine_info
    from irv2.bench.synthetic import calibrated_random_module

    path = irv2.save(calibrated_random_module(), tempfile.mkdtemp() + "/random-irv2")
    seconds: dict[str, dict[str, float]] = {}
    for engine in args.engines.split(","):
        seconds[engine] = {}
        for attempt in ("first", "cached"):
            started = time.perf_counter()
            irv2.load(path, engine=engine)
            seconds[engine][attempt] = round(time.perf_counter() - started, 1)
    print(json.dumps({"machine": machine_info(torch.device("cpu")), "load_s": seconds}, indent=1))


if __name__ == "__main__":
    main()
