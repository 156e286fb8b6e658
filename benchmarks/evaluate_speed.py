"""``irv2 evaluate`` against ``irv2 classify`` on the same images, and what a second configuration adds.

Makes N JPEGs the size of ImageNet's validation photos (500 x 375, quality 90: crops and mirror images of the
scikit-image sample photos and irv2's own) in ImageNet's folder layout, saves seeded random weights whose
BatchNorm statistics fit real photos (speed does not depend on the values), then runs, as a user does, each
command in its own process, timed from start to exit:

* ``irv2 classify DIR --dtype bfloat16`` (the top 5 of each image to /dev/null);
* ``irv2 evaluate --data DIR --dtype bfloat16 --out OUT`` (the same images, scored; metrics.json and report.html);
* ``irv2 evaluate --data DIR --dtype bfloat16 --dtype float32 --out OUT`` (two configurations in one pass).

The three alternate for ``--rounds`` rounds, each round in the reverse order of the one before, and each keeps
its fastest round (noise on a shared machine only ever slows a run down). Every command pins ``--engine torch``
(the same engine in all three) and runs with the default batch size and decoding threads. Prints images per
second, the ratio of evaluate to classify, and the time the float32 configuration added against its own network
time as evaluate measured it inside the two-configuration run.

With ``--costs N`` it also evaluates float32, bfloat16 and int8 (each on the engine irv2 picks, int8 calibrated
on 32 other images) on the first N images: speed, and agreement with float32 on random weights (no ImageNet
here, so no accuracy).

    .venv/bin/python benchmarks/evaluate_speed.py [--images 1000] [--rounds 2] [--costs 200] [--json OUT.json]
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
from pathlib import Path

import numpy as np
from PIL import Image

import irv2
from irv2.bench.runner import machine_info
from irv2.bench.synthetic import calibrated_random_module

CLASSES = 10  # synset folders the images are spread over
SIZE = (500, 375)  # a typical ImageNet validation photo
ENGINE = ("--engine", "torch")


def photos() -> list[np.ndarray]:
    from skimage import data

    arrays = [
        getattr(data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket", "camera", "hubble_deep_field")
    ]
    arrays = [a if a.ndim == 3 else np.stack([a] * 3, -1) for a in arrays]
    arrays.append(np.asarray(Image.open(irv2.sample_image()).convert("RGB")))
    return [a[..., :3] for a in arrays]


def make_images(root: Path, count: int, offset: int = 0) -> list[Path]:
    """``count`` different JPEGs in ``root/<synset>/``: crops at several places and scales, some mirrored."""
    sources, synsets, paths = photos(), irv2.synsets(1000), []
    for i in range(offset, offset + count):
        photo = sources[i % len(sources)]
        scale = 0.55 + 0.4 * ((i * 7) % 10) / 10
        height, width = int(photo.shape[0] * scale), int(photo.shape[1] * scale)
        top = (i * 13) % (photo.shape[0] - height + 1)
        left = (i * 29) % (photo.shape[1] - width + 1)
        crop = photo[top : top + height, left : left + width]
        if (i // len(sources)) % 2:
            crop = crop[:, ::-1]
        folder = root / synsets[(i * 97) % 1000 if i % CLASSES else 0]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        Image.fromarray(np.ascontiguousarray(crop)).resize(SIZE).save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--costs", type=int, default=0, help="also measure float32, bfloat16 and int8 on N images")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    irv2_command = [sys.executable, "-m", "irv2"]
    with tempfile.TemporaryDirectory(prefix="irv2-evaluate-speed-") as scratch:
        root = Path(scratch)
        env = {**os.environ, "IRV2_HOME": str(root / "home")}
        weights = irv2.save(calibrated_random_module(), root / "weights")
        make_images(root / "val", args.images)
        data = str(root / "val")
        common = ["-w", str(weights), *ENGINE]
        commands = {
            "classify bf16": [*irv2_command, "classify", data, *common, "--dtype", "bfloat16"],
            "evaluate bf16": [*irv2_command, "evaluate", "--data", data, *common, "--dtype", "bfloat16", "--out",
                              str(root / "one")],
            "evaluate bf16+fp32": [*irv2_command, "evaluate", "--data", data, *common, "--dtype", "bfloat16",
                                   "--dtype", "float32", "--out", str(root / "two")],
        }  # fmt: skip
        # One untimed start first, so that no timed run pays for compiling irv2's bytecode.
        subprocess.run([*irv2_command, "--help"], check=True, stdout=subprocess.DEVNULL, env=env)
        seconds: dict[str, list[float]] = {name: [] for name in commands}
        network: dict[str, list[list[float]]] = {name: [] for name in commands}  # per run, per configuration
        names = list(commands)
        for round_number in range(args.rounds):
            for name in names if round_number % 2 == 0 else names[::-1]:
                out = {"evaluate bf16": root / "one", "evaluate bf16+fp32": root / "two"}.get(name)
                if out is not None:
                    shutil.rmtree(out, ignore_errors=True)  # a fresh evaluation each time, never a resumed one
                seconds[name].append(timed(commands[name], env))
                if out is not None:
                    runs = json.loads((out / "metrics.json").read_text())["runs"]
                    network[name].append([run["network_seconds"] for run in runs])
                print(f"round {round_number + 1}: {name}: {seconds[name][-1]:.1f} s", file=sys.stderr, flush=True)
        fastest = {name: min(range(len(times)), key=times.__getitem__) for name, times in seconds.items()}
        best = {name: seconds[name][i] for name, i in fastest.items()}
        one_network = network["evaluate bf16"][fastest["evaluate bf16"]]
        two_network = network["evaluate bf16+fp32"][fastest["evaluate bf16+fp32"]]
        report = {
            "machine": machine_info(irv2.load(weights).device),
            "images": args.images,
            "seconds": seconds,
            "network_seconds": network,
            "images_per_second": {name: args.images / s for name, s in best.items()},
            "evaluate_over_classify": best["classify bf16"] / best["evaluate bf16"],
            # What the float32 configuration added to the whole run, against its own network time in that run.
            "second_configuration_added_s": best["evaluate bf16+fp32"] - best["evaluate bf16"],
            "float32_network_s": two_network[1],
            "bf16_network_s": {"alone": one_network[0], "with float32": two_network[0]},
        }
        if args.costs:
            report["costs"] = costs(irv2_command, root, weights, args.costs, env)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


def costs(irv2_command: list[str], root: Path, weights: Path, count: int, env: dict[str, str]) -> list[dict]:
    """float32, bfloat16 and int8 on ``count`` images, each on the engine irv2 picks: their runs."""
    make_images(root / "costs", count)
    calibration = make_images(root / "calibration", 32, offset=100_000)
    dtypes = ["--dtype", "float32", "--dtype", "bfloat16", "--dtype", "int8"]
    out = ["--out", str(root / "costs-out"), "--calibration", str(calibration[0].parent.parent)]
    command = [*irv2_command, "evaluate", "--data", str(root / "costs"), "-w", str(weights), *dtypes, *out]
    subprocess.run(command, check=True, stdout=sys.stderr, env={**env, "IRV2_ENGINE": "auto"})
    metrics = json.loads((root / "costs-out" / "metrics.json").read_text())
    keep = ("name", "network_images_per_second", "agreement", "top1", "top5", "ece")
    return [{key: run[key] for key in keep} for run in metrics["runs"]]


if __name__ == "__main__":
    main()
