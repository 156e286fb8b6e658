"""The prepared run for a session that is lent a GPU (issue 5): are irv2's CUDA paths right, and how fast are they.

CI has no GPU, so the fused network on cuDNN, torch.compile on CUDA, the pinned-memory decoding pipeline and
the CLI on a GPU are checked only here. One command, from the repository root on the GPU machine:

    PYTHONPATH=src python3 benchmarks/gpu_check.py --out "$OUT"

It exits with status 1 if a stage failed or float32 missed 1e-4 (the summary on stdout says which). Stages,
each written to ``OUT/gpu_check.json`` as soon as it ends (a run cut short keeps what it measured):

1. ``agreement``: logits of every CUDA mode (float32 fused and plain, tf32, bfloat16, float16, and bfloat16
   through torch.compile) against a float64 forward of the same weights on the CPU; max |difference| / max
   |logit| and top-1 agreement. float32 must stay within 1e-4 (irv2's exactness contract; expect ~1e-6).
2. ``cli``: ``irv2 classify`` on a folder of 6-megapixel JPEGs with ``--device cuda`` in float32 and bfloat16
   against ``--device cpu`` float32: the whole pipeline (decoding threads, pinned memory, copy to the GPU).
3. ``finetune``: ``irv2 finetune --mode full`` for two epochs on a tiny two-class set at 299 px (AuxLogits
   loss, bfloat16 autocast on the GPU), then the saved module classifying on the GPU.
4. ``bench``: ``irv2 bench`` (load, cold start, batch 1 latency, throughput at batch 1/64/256 per dtype,
   peak memory, end to end on the JPEGs), fused network; then torch.compile at large batch, where the
   issue's target (>= 8,000 img/s in bfloat16 on one H100) applies.

Weights are random with BatchNorm statistics measured on photos (``irv2.bench.synthetic``): speed does not
depend on the values, and the agreement check compares the same weights on two devices. ``--device cpu
--quick`` runs the same code on a CPU in under a minute (tests/test_gpu_check.py does), so that a GPU session
does not spend its minutes on a broken script.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import irv2
from irv2.bench import BenchConfig, run_bench
from irv2.bench.synthetic import calibrated_random_module, sample_photos
from irv2.export.wrapper import relative_error

FLOAT32_LIMIT = 1e-4  # irv2's exactness contract against the reference, in float32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes and no torch.compile: checks the script")
    parser.add_argument("--photos", type=int, default=768, help="6 MP JPEGs for end to end (3 batches of 256)")
    parser.add_argument(
        "--skip", action="append", default=[], choices=("agreement", "cli", "finetune", "bench", "compiled")
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: CUDA is not available here (use --device cpu --quick to check the script)")
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"device": _device_name(device), "torch": torch.__version__, "irv2": irv2.__version__}
    with tempfile.TemporaryDirectory(prefix="irv2-gpu-check-") as scratch:
        scratch = Path(scratch)
        os.environ.setdefault("IRV2_HOME", str(scratch / "home"))
        weights = irv2.save(calibrated_random_module(), scratch / "random-irv2")
        photos = _write_photos(scratch / "photos", 4 if args.quick else args.photos)
        with_compile = not args.quick and "compiled" not in args.skip
        stages = {
            "agreement": lambda: agreement(weights, device, with_compile, noise_images=1 if args.quick else 6),
            "cli": lambda: cli_check(weights, photos, args.device),
            "finetune": lambda: finetune_check(weights, scratch, args.device, args.quick),
            "bench": lambda: bench(weights, photos, device, args.quick),
            "bench_compiled": lambda: bench_compiled(weights, device),
        }
        for name, run in stages.items():
            if name in args.skip or (name == "bench_compiled" and not with_compile):
                continue
            report[name] = _stage(name, run)
            _save(args.out / "gpu_check.json", report)
    summary = _summary(report)
    print(json.dumps(summary, indent=2))
    if summary["problems"]:
        sys.exit(1)


def agreement(weights: Path, device: torch.device, with_compile: bool, noise_images: int) -> list[dict]:
    """Logits of each mode on ``device`` against float64 on the CPU, on 2 photos and ``noise_images`` of noise
    (one in a quick run: float64 on a CPU is slow, and the run only checks the script)."""
    rng = np.random.default_rng(0)
    noise = rng.random((noise_images, 299, 299, 3), dtype=np.float32)
    images = np.concatenate([sample_photos(), noise])
    reference_module = irv2.load(weights, dtype="float32", engine="plain")
    with torch.inference_mode():
        model = reference_module.model.double()
        x = torch.from_numpy(2.0 * images.transpose(0, 3, 1, 2) - 1.0).double()
        reference = model(x).numpy()
    modes = [("float32", "torch"), ("float32", "plain"), *(("bfloat16", "torch") for _ in _bfloat16(device))]
    if device.type == "cuda":
        modes += [("tf32", "torch"), ("float16", "torch")]
    if with_compile:
        modes.append(("bfloat16", "compiled"))
    rows = []
    for dtype, engine in modes:
        started = time.perf_counter()
        module = irv2.load(weights, device=device, dtype=dtype, engine=engine)
        logits = module(images)
        error = relative_error(logits, reference)
        row = {
            "dtype": dtype,
            "engine": engine,
            "relative_error": error,
            "top1_agreement": int((logits.argmax(1) == reference.argmax(1)).sum()),
            "images": len(images),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if dtype == "float32":
            row["within_1e-4"] = error <= FLOAT32_LIMIT
        rows.append(row)
        _log(f"agreement {dtype} {engine}: {error:.2e}, top-1 {row['top1_agreement']}/{len(images)}")
        del module
    return rows


def _bfloat16(device: torch.device) -> tuple[str, ...]:
    """``("bfloat16",)`` where the device runs it: GPUs, and CPUs with bfloat16 instructions (irv2 refuses it on
    the others, which a dry run on such a CPU checks elsewhere)."""
    from irv2.engine.precision import cpu_has_fast_bfloat16

    return ("bfloat16",) if device.type != "cpu" or cpu_has_fast_bfloat16() else ()


def cli_check(weights: Path, photos: Path, device: str) -> dict:
    """``irv2 classify`` on the JPEGs: on ``device`` in float32 and bfloat16, against the CPU in float32."""
    subset = sorted(photos.iterdir())[:8]
    reference = _classify(weights, subset, "cpu", "float32")
    dtypes = ("float32", *_bfloat16(torch.device(device)))
    runs = {f"{device} {dtype}": _classify(weights, subset, device, dtype) for dtype in dtypes}
    reference_indices, reference_scores = _top1(reference)
    result: dict = {"photos": len(subset)}
    for name, rows in runs.items():
        indices, scores = _top1(rows)
        same = int((indices == reference_indices).sum())
        difference = float(np.abs(scores - reference_scores).max())
        result[name] = {"top1_agreement": same, "max_top1_score_difference": difference}
        _log(f"classify {name}: top-1 {same}/{len(rows)} as the CPU in float32")
    return result


def finetune_check(weights: Path, scratch: Path, device: str, quick: bool) -> dict:
    """``irv2 finetune --mode full`` on two tinted classes of the bundled photo (on a GPU at 299 px, so the
    AuxLogits loss and bfloat16 autocast run), then the saved module classifying on ``device``."""
    data = scratch / "finetune-data"
    base = Image.open(irv2.sample_image()).convert("RGB").resize((320, 240))
    per_class = 4 if quick else 16
    for name, tint in (("red", (1.0, 0.6, 0.6)), ("blue", (0.6, 0.6, 1.0))):
        (data / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = np.asarray(base, np.float32) * np.array(tint, np.float32)
            pixels = np.roll(pixels, 7 * index, axis=1)  # each image a little different
            Image.fromarray(pixels.astype(np.uint8)).save(data / name / f"{index}.jpg", quality=90)
    out = scratch / "finetuned"
    size, epochs, batch = (96, 1, 4) if quick else (299, 2, 16)
    command = [sys.executable, "-m", "irv2", "finetune", "--data", str(data), "--out", str(out), "-w", str(weights)]
    command += ["--mode", "full", "--image-size", str(size), "--epochs", str(epochs), "-b", str(batch)]
    command += ["--device", device, "--val-fraction", "0.25", "-q"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"irv2 finetune --device {device} failed: {done.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    module = irv2.load(out, device=device)
    logits = module(np.random.default_rng(0).random((2, size, size, 3), dtype=np.float32))
    _log(f"finetune: {metrics['dtype']}, {seconds:.0f} s, last loss {metrics['history'][-1]['train_loss']:.3f}")
    return {
        "seconds": seconds,
        "dtype": metrics["dtype"],
        "aux_logits": metrics["aux_logits"],
        "history": metrics["history"],
        "labels": module.labels,
        "logits_shape": list(logits.shape),
        "logits_finite": bool(np.isfinite(logits).all()),
    }


def _top1(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The top class index and score of each ``irv2 classify -f json`` row."""
    return (
        np.array([row["predictions"][0]["index"] for row in rows]),
        np.array([row["predictions"][0]["score"] for row in rows]),
    )


def _classify(weights: Path, paths: list[Path], device: str, dtype: str) -> list[dict]:
    command = [sys.executable, "-m", "irv2", "classify", *map(str, paths), "-w", str(weights)]
    command += ["--device", device, "--dtype", dtype, "-f", "json", "-q", "-k", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"irv2 classify --device {device} --dtype {dtype} failed: {done.stderr[-2000:]}")
    return [json.loads(line) for line in done.stdout.splitlines()]


def bench(weights: Path, photos: Path, device: torch.device, quick: bool) -> dict:
    """``irv2 bench`` on the fused network, every dtype the device runs, with the end-to-end figure."""
    gpu = device.type == "cuda"
    config = BenchConfig(
        weights=str(weights),
        device=str(device),
        dtypes=["float32", "tf32", "bfloat16", "float16"] if gpu else ["float32", *_bfloat16(device)],
        engines=["torch"],
        batch_sizes=[1, 2] if quick else [1, 64, 256],
        min_seconds=0.5 if quick else 2.0,
        images=str(photos),
        image_limit=len(list(photos.iterdir())),
        cold_start=not quick,
        log=lambda message: _log(f"bench: {message}"),
    )
    return run_bench(config)


def bench_compiled(weights: Path, device: torch.device) -> dict:
    """torch.compile (inductor, weights frozen) in bfloat16 and float16 at batch 256: the issue's H100 target."""
    config = BenchConfig(
        weights=str(weights),
        device=str(device),
        dtypes=["bfloat16", "float16"],
        engines=["compiled"],
        batch_sizes=[256],
        min_seconds=3.0,
        cold_start=False,
        log=lambda message: _log(f"compiled: {message}"),
    )
    return run_bench(config)


def _write_photos(folder: Path, count: int) -> Path:
    """``count`` 3000 x 2000 JPEGs (quality 92): the bundled photo and its mirror, scaled up, with noise so
    that each file is as costly to decode as a camera's (about 1.8 MB). Sixteen are drawn; the rest are
    copies of them, which cost the same to decode (nothing caches decoded pixels)."""
    folder.mkdir(parents=True)
    base = Image.open(irv2.sample_image()).convert("RGB").resize((3000, 2000), Image.BICUBIC)
    base = np.asarray(base, dtype=np.int16)

    def draw(index: int) -> Path:
        noise = np.random.default_rng(index).integers(-12, 13, base.shape, dtype=np.int16)
        image = base[:, ::-1] if index % 2 else base
        path = folder / f"{index:04d}.jpg"
        Image.fromarray(np.clip(image + noise, 0, 255).astype(np.uint8)).save(path, quality=92)
        return path

    distinct = min(count, 16)
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        drawn = list(pool.map(draw, range(distinct)))
    for index in range(distinct, count):
        shutil.copyfile(drawn[index % distinct], folder / f"{index:04d}.jpg")
    return folder


def _log(message: str) -> None:
    """Progress to stderr; stdout carries only the summary (JSON)."""
    print(f"gpu_check: {message}", file=sys.stderr, flush=True)


def _stage(name: str, run):
    started = time.perf_counter()
    _log(f"{name} ...")
    try:
        result = run()
    except Exception as exc:  # a broken stage is a finding: record it and go on to the next
        _log(f"{name} FAILED: {exc!r}")
        return {"failed": repr(exc)[:4000]}
    _log(f"{name} done in {time.perf_counter() - started:.0f} s")
    return result


def _save(path: Path, report: dict) -> None:
    """``report`` as JSON at ``path``, replaced whole (a run killed mid-write leaves the previous stage's)."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(report, indent=2))
    partial.replace(path)


def _summary(report: dict) -> dict:
    """The headline figures: float32 exactness, and the best img/s per dtype and engine."""
    summary: dict = {"device": report["device"]}
    summary["problems"] = [f"{key}: {value['failed']}" for key, value in report.items() if _failed(value)]
    rows = report.get("agreement")
    if isinstance(rows, list):
        summary["agreement"] = {f"{r['dtype']} {r['engine']}": r["relative_error"] for r in rows}
        inexact = [f"{r['engine']} ({r['relative_error']:.1e})" for r in rows if r.get("within_1e-4") is False]
        if inexact:
            summary["problems"].append(f"float32 beyond {FLOAT32_LIMIT:g} of the reference: {', '.join(inexact)}")
    for key in ("bench", "bench_compiled"):
        results = report.get(key, {}).get("results", [])
        for row in results:
            name = f"{row.get('dtype')} {row.get('engine')}"
            best = summary.setdefault("best_images_per_s", {}).get(name, 0.0)
            summary["best_images_per_s"][name] = max(best, row.get("images_per_s") or 0.0)
        if "end_to_end" in report.get(key, {}):
            summary["end_to_end"] = report[key]["end_to_end"]
    return summary


def _failed(value) -> bool:
    return isinstance(value, dict) and "failed" in value


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


if __name__ == "__main__":
    main()
