"""irv2 against its peers on the same weights, on this machine, in one run (issue 5's comparison).

    .venv/bin/python benchmarks/peers.py [--timm-python PATH] [--batch-sizes 1,8,32] [--seconds 4] [--rounds 2]

irv2 runs as its users run it: the default fused PyTorch engine and the TorchScript (oneDNN Graph) engine in
float32 and bfloat16, the plain network, the ONNX Runtime engine in float32, the OpenVINO engine in
float32, bfloat16 and int8 (NNCF), and engine="auto" in each (int8 calibrated on eight other photos).
Peers: timm (eager channels-last, and torch.compile), Keras on TensorFlow, ONNX Runtime, OpenVINO (fp32,
bf16, and int8 quantized with NNCF's defaults on the same eight photos). Each engine is also shown as a share
of this CPU's ceiling in its precision (benchmarks/ceiling.py: a large matrix product's rate divided by the
network's GFLOP per image; int8's product is torch._int_mm's, which may sit below the CPU's int8 peak).
Every engine gets the same full-size weights (seeded, BatchNorm calibrated on real photos), runs in a fresh
process of its own (benchmarks/peer_engines.py), is timed on the same random batches after a warm-up,
and its logits on four photos are compared with irv2's exact float32 logits. Dev extras: pip install timm
onnxruntime openvino tensorflow-cpu keras scikit-image (timm needs torchvision, which does not import beside
the CPU torch 2.13 build; give --timm-python an interpreter whose torch has a matching torchvision).
With --rounds N every engine runs N times, the rounds alternating in order (forwards, then backwards), and
each batch size keeps its fastest round: on a shared machine, noise only slows a run down, and a slow
period then falls on every engine instead of on whichever ran during it. Prints a table and writes the
figures as JSON (--json-out), with each round's best img/s per engine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (engine, dtype) in the order of the table; the first is the reference for accuracy.
RUNS = [
    ("irv2", "float32"),
    ("irv2", "bfloat16"),
    ("irv2-torchscript", "float32"),
    ("irv2-torchscript", "bfloat16"),
    ("irv2-plain", "float32"),
    ("irv2-onnxruntime", "float32"),
    ("irv2-openvino", "float32"),
    ("irv2-openvino", "bfloat16"),
    ("irv2-openvino", "int8"),
    ("irv2-auto", "float32"),
    ("irv2-auto", "bfloat16"),
    ("irv2-auto", "int8"),
    ("timm", "float32"),
    ("timm", "bfloat16"),
    ("timm-compiled", "float32"),
    ("keras", "float32"),
    ("onnxruntime", "float32"),
    ("openvino", "float32"),
    ("openvino", "bfloat16"),
    ("openvino", "int8"),
]


def prepare(workdir: Path) -> None:
    """Write the shared weights in each engine's format, and the test photos."""
    import torch
    from skimage import data

    import irv2
    from fixture_weights import calibrate_batchnorm, random_slim_weights
    from irv2.weights.slim_convert import inspect_layout, slim_to_state_dict
    from tf_reference import keras_reference, tf_preprocess_for_eval

    photos = np.stack(
        [tf_preprocess_for_eval(getattr(data, n)()) for n in ("astronaut", "chelsea", "coffee", "rocket")]
    )
    np.save(workdir / "photos.npy", photos.astype(np.float32))
    # int8's calibration set: eight other photos (colour ones, and grey ones as RGB), none of the test four.
    others = ("cat", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel", "camera", "coins", "moon")
    calibration = [getattr(data, name)() for name in others]
    calibration = [image if image.ndim == 3 else np.stack([image] * 3, -1) for image in calibration]
    np.save(workdir / "calibration.npy", np.stack([tf_preprocess_for_eval(image) for image in calibration]))
    weights = random_slim_weights(seed=2016)
    calibrate_batchnorm(weights, photos)
    keras_reference(weights).save(workdir / "keras.keras")
    # irv2's native module, through irv2's own TF-Slim converter.
    model = irv2.model.InceptionResNetV2(num_classes=1001, aux_logits=False)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    main_weights = {k: v for k, v in weights.items() if "/AuxLogits/" not in k}  # inference has no aux head
    state = slim_to_state_dict(main_weights, expected, layout=inspect_layout(main_weights)).state_dict
    model.load_state_dict(state)
    module = irv2.Module(model.eval(), irv2.api.module.ModuleInfo(1001, irv2.labels()))
    irv2.save(module, workdir / "irv2")
    # timm's keys are irv2's; timm has no frozen BatchNorm scale of its own to drop.
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, workdir / "timm.safetensors")
    # ONNX of the plain network (NCHW, [-1, 1]), as a user exports it for ONNX Runtime / OpenVINO.
    program = torch.onnx.export(
        model,
        (torch.zeros(2, 3, 299, 299),),
        input_names=["input"],
        output_names=["logits"],
        opset_version=18,
        dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}},
        dynamo=True,
        verbose=False,
    )
    program.save(workdir / "model.onnx", external_data=False)


def run_engine(python: str, engine: str, dtype: str, workdir: Path, batch_sizes: str, seconds: float) -> dict:
    command = [python, str(ROOT / "benchmarks" / "peer_engines.py"), engine, str(workdir), "--dtype", dtype,
               "--batch-sizes", batch_sizes, "--seconds", str(seconds)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        return {"engine": engine, "dtype": dtype, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    # The result is the last line; a library may have printed its own lines before it (NNCF's progress).
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timm-python", default=sys.executable, help="interpreter for the timm runs")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=4.0, help="minimum timed seconds per batch size")
    parser.add_argument("--only", help="comma-separated engine names to run (default: all)")
    parser.add_argument("--rounds", type=int, default=1, help="run every engine this many times (see above)")
    parser.add_argument("--json-out", type=Path, help="write all figures here as JSON")
    args = parser.parse_args()
    import torch
    from ceiling import ceilings

    from irv2.bench import machine_info

    runs = [r for r in RUNS if not args.only or r[0] in args.only.split(",")]
    limits = ceilings()  # measured before any engine runs, on a quiet machine
    rounds: dict[tuple[str, str], list[dict]] = {run: [] for run in runs}
    with tempfile.TemporaryDirectory(prefix="irv2-peers-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        prepare(workdir)
        print(f"prepared weights in every format in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for round_index in range(args.rounds):
            for engine, dtype in runs if round_index % 2 == 0 else runs[::-1]:
                python = args.timm_python if engine.startswith("timm") else sys.executable
                print(f"round {round_index + 1}/{args.rounds}: running {engine} {dtype}", file=sys.stderr)
                result = run_engine(python, engine, dtype, workdir, args.batch_sizes, args.seconds)
                rounds[(engine, dtype)].append(result)
    report = {
        "machine": machine_info(torch.device("cpu")),
        "batch_sizes": args.batch_sizes,
        "rounds": args.rounds,
        "ceiling": limits,
        "results": [fastest_round(rounds[run]) for run in runs],
    }
    print(format_table(report))
    if args.json_out:
        args.json_out.write_text(json.dumps(summarise_logits(report), indent=2) + "\n")


def fastest_round(results: list[dict]) -> dict:
    """One engine's rounds as one result: per batch size, the round with the most img/s."""
    done = [r for r in results if "error" not in r]
    if not done:
        return results[0]
    fastest: dict[int, dict] = {}
    for result in done:
        for row in result["results"]:
            if row["images_per_s"] > fastest.get(row["batch_size"], {"images_per_s": 0.0})["images_per_s"]:
                fastest[row["batch_size"]] = row
    merged = dict(done[0])  # description, set-up time and logits (the same in every round) from the first
    merged["results"] = [fastest[size] for size in sorted(fastest)]
    merged["best_images_per_s_by_round"] = [_best(r) for r in results if "error" not in r]
    return merged


def summarise_logits(report: dict) -> dict:
    """``report`` with each engine's raw logits (4 x 1001 numbers) replaced by what the table shows of them:
    the error against irv2 float32 and the top-1 agreement."""
    reference = next(
        np.asarray(r["logits"]) for r in report["results"] if (r["engine"], r["dtype"]) == ("irv2", "float32")
    )
    results = []
    for result in report["results"]:
        result = dict(result)
        if "logits" in result:
            logits = np.asarray(result.pop("logits"))
            result["logit_error"] = float(np.abs(logits - reference).max() / np.abs(reference).max())
            result["top1_agreement"] = float((logits.argmax(1) == reference.argmax(1)).mean())
        results.append(result)
    return {**report, "results": results}


def format_table(report: dict) -> str:
    results = report["results"]
    reference = next((np.asarray(r["logits"]) for r in results if (r["engine"], r["dtype"]) == ("irv2", "float32")
                      and "logits" in r), None)  # fmt: skip
    fp32_peers = [_best(r) for r in results if "results" in r and r["dtype"] == "float32" and "irv2" not in r["engine"]]
    best_fp32_peer = max(fp32_peers, default=None)
    ov_bf16 = next(
        (_best(r) for r in results if (r["engine"], r["dtype"]) == ("openvino", "bfloat16") and "results" in r), None
    )
    ceiling = report.get("ceiling", {}).get("images_per_s", {})
    rates = report.get("ceiling", {}).get("gemm_gflops", {})
    lines = [
        f"{report['machine']['cpu']}, {report['machine']['cores']} cores; batch sizes {report['batch_sizes']}",
        "ceiling (a large matrix product / {:.1f} GFLOP per image): ".format(report["ceiling"]["gflop_per_image"])
        + ", ".join(f"{d} {rates[d]:.0f} GFLOP/s = {ceiling[d]:.1f} img/s" for d in ceiling if ceiling[d]),
        f"{'engine':<58} {'best img/s':>10} {'(batch)':>7} {'b1 ms':>8} {'logit err':>10} {'top-1':>6}"
        f" {'x best fp32 peer':>16} {'x OV bf16':>9} {'of ceiling':>10}",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"{r['engine'] + ' ' + r['dtype']:<58} failed: {r['error']}")
            continue
        best_row = max(r["results"], key=lambda row: row["images_per_s"])
        b1 = next((row["latency_ms_p50"] for row in r["results"] if row["batch_size"] == 1), float("nan"))
        logits = np.asarray(r["logits"])
        error = np.abs(logits - reference).max() / np.abs(reference).max() if reference is not None else float("nan")
        top1 = (logits.argmax(1) == reference.argmax(1)).mean() if reference is not None else float("nan")
        vs_peer = best_row["images_per_s"] / best_fp32_peer if best_fp32_peer else float("nan")
        vs_ov = best_row["images_per_s"] / ov_bf16 if ov_bf16 else float("nan")
        limit = ceiling.get(r["dtype"])
        share = f"{best_row['images_per_s'] / limit:>10.0%}" if limit else f"{'-':>10}"
        lines.append(
            f"{r['description']:<58} {best_row['images_per_s']:>10.2f} {best_row['batch_size']:>7} {b1:>8.1f} "
            f"{error:>10.1e} {top1:>6.0%} {vs_peer:>16.2f} {vs_ov:>9.2f} {share}"
        )
    return "\n".join(lines)


def _best(result: dict) -> float:
    return max(row["images_per_s"] for row in result["results"])


if __name__ == "__main__":
    main()
