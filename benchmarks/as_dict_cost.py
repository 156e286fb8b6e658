"""What TF-Hub's standard dict call costs against the plain call, on each CPU engine, alternating in one run:

    module(dict(images=x), signature="image_feature_vector", as_dict=True)["default"]   (TF-Hub's image docs)
    module(x, signature="image_feature_vector")                                           (the plain call)

    .venv/bin/python benchmarks/as_dict_cost.py [--calls 20] [--batch-sizes 1 2] [--out docs/as_dict_cost_cpu.json]

TensorFlow runs only what a fetch needs, so ``["default"]`` should cost what the plain call does (issue 22: at
most 1.10x). Also timed, for scale: reading one end point of the same dict, which runs the network's end-point
pass. Engines whose extra is missing are left out and named.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from report_support import machine, publish

ENGINES = ("torch", "onnxruntime", "openvino")


def _timed(call, repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="timed calls of each, per engine and batch size")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="irv2-as-dict-"))
    os.environ["IRV2_HOME"] = str(scratch / "home")
    os.environ.pop("IRV2_ENGINE", None)

    import numpy as np

    import irv2
    from irv2.bench.synthetic import calibrated_random_module
    from irv2.errors import MissingDependencyError

    weights = irv2.save(calibrated_random_module(), scratch / "random-irv2")
    rng = np.random.default_rng(0)
    results, missing = [], {}
    for engine in ENGINES:
        try:
            module = irv2.load(weights, engine=engine)
        except MissingDependencyError as exc:
            missing[engine] = str(exc)
            continue
        for batch_size in args.batch_sizes:
            images = rng.random((batch_size, 299, 299, 3), dtype=np.float32)
            calls = {
                "plain": lambda m=module, x=images: m(x, signature="image_feature_vector"),
                "as_dict_default": lambda m=module, x=images: m(
                    dict(images=x), signature="image_feature_vector", as_dict=True
                )["default"],
            }
            np.testing.assert_array_equal(calls["plain"](), calls["as_dict_default"]())
            timed: dict[str, list[float]] = {name: [] for name in calls}
            # Alternating blocks of three calls, the first of each untimed (a runtime's threads spin after a call).
            for _ in range(max(1, args.calls // 2)):
                for name, call in calls.items():
                    call()
                    timed[name] += _timed(call, 2)
            outputs = module(dict(images=images), signature="image_feature_vector", as_dict=True)
            endpoint = _timed(lambda o=outputs: o["InceptionResnetV2/Mixed_6a"], 1)[0]
            plain_ms = statistics.median(timed["plain"]) * 1e3
            as_dict_ms = statistics.median(timed["as_dict_default"]) * 1e3
            results.append(
                {
                    "engine": module.engine_name,
                    "batch_size": batch_size,
                    "plain_ms": round(plain_ms, 2),
                    "as_dict_default_ms": round(as_dict_ms, 2),
                    "as_dict_vs_plain": round(as_dict_ms / plain_ms, 3),
                    "first_end_point_read_ms": round(endpoint * 1e3, 1),
                }
            )
            print(json.dumps(results[-1]), file=sys.stderr)
    report = {
        "command": f"benchmarks/as_dict_cost.py --calls {args.calls} --batch-sizes "
        + " ".join(map(str, args.batch_sizes)),
        **machine(),
        "results": results,
        "engines_missing": missing,
    }
    publish(report, args.out)


if __name__ == "__main__":
    main()
