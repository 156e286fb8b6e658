"""``irv2 evaluate`` as a user runs it: two precisions in one pass, and ``kill -9`` then the same command again."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

from batch_support import run_cli, start_cli
from bfloat16_support import BFLOAT16_HERE, assert_cli_refused
from evaluate_support import SYNSETS, TOP1, TOP5, draw_images, write_folders

# One thread per process in the long runs, so that the resumed run's batches round as the uninterrupted run's.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
# What differs between two runs of the same evaluation: when and how fast they ran.
TIMINGS = {"seconds", "images_per_second", "created", "network_seconds", "network_images_per_second", "machine"}


def _parts(out) -> dict[str, dict[str, np.ndarray]]:
    folder = out / "predictions"
    parts = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith("part-"):
            with np.load(folder / name) as archive:
                parts[name] = {k: archive[k] for k in archive.files if not k.endswith("_seconds")}
    return parts


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.mark.slow  # bfloat16: fast with AVX512-BF16 or AMX, emulated (many times slower) elsewhere
def test_two_precisions_in_one_pass(tmp_path, drawn, weights_dir):
    data = write_folders(tmp_path / "val", drawn.files, drawn.labels)
    out = tmp_path / "out"
    run = run_cli("evaluate", "--data", data, "-w", weights_dir, "--out", out, "--dtype", "float32",
                  "--dtype", "bf16", "--engine", "torch", "-b", "4")  # fmt: skip
    if not BFLOAT16_HERE:  # refused before any image is read
        assert not (out / "metrics.json").exists()
        return assert_cli_refused(run)
    assert run.returncode == 1, run.stderr  # the broken image
    metrics = json.loads((out / "metrics.json").read_text())
    reference, other = metrics["runs"]
    assert (reference["name"], other["name"]) == ("torch float32", "torch bfloat16")
    for key in ("top1", "top5", "images", "errors", "ece", "reliability"):
        assert reference[key] == metrics[key], key
    assert (metrics["top1"], metrics["top5"]) == (TOP1, TOP5)
    assert reference["agreement"] == {"top1": 1.0, "mean_kl": 0.0}
    assert 0.0 <= other["agreement"]["top1"] <= 1.0 and other["agreement"]["mean_kl"] > 0
    assert other["images"] == 14 and other["errors"] == 1 and other["network_seconds"] > 0
    # bfloat16's own scores are what its own predictions and the labels imply.
    [part] = _parts(out).values()
    good = part["errors"] == ""
    ordered = _targets_in_order(part["paths"].tolist())
    top = part["top_index"][1][good]
    assert other["top1"] == float((top[:, 0] == ordered[good]).mean())
    assert other["top5"] == float((top == ordered[good][:, None]).any(axis=1).mean())
    agreeing = float((top[:, 0] == part["top_index"][0][good, 0]).mean())
    assert other["agreement"]["top1"] == agreeing
    assert other["agreement"]["mean_kl"] == pytest.approx(float(part["kl"][1][good].mean()))
    table = run.stdout.splitlines()
    assert table[1].startswith("torch float32") and "reference" in table[1]
    assert table[2].startswith("torch bfloat16") and f"{100 * agreeing:.2f}%" in table[2]
    report = (out / "report.html").read_text()
    assert "torch float32 (reference)" in report and "torch bfloat16" in report


def _targets_in_order(paths: list[str]) -> np.ndarray:
    """The 1001-class output each image's folder (its synset) names."""
    return np.array([SYNSETS.index(os.path.basename(os.path.dirname(p))) + 1 for p in paths])


@pytest.fixture(scope="module")
def twenty(tmp_path_factory, photo_arrays):
    """20 images in ImageNet's folder layout, two of them broken."""
    files = draw_images(photo_arrays, 20, broken=[7, 18])
    return write_folders(tmp_path_factory.mktemp("twenty") / "val", files, [SYNSETS[100 * (i % 4)] for i in range(20)])


@pytest.mark.slow
def test_kill_9_then_the_same_command_again(tmp_path, twenty, weights_dir):
    # 5 chunks (parts) of 4 images, 2 batches each: the kill lands after 2 parts, with 1 to 3 left.
    job = ("evaluate", "--data", twenty, "-w", weights_dir, "--chunk-size", "4", "--batch-size", "2")
    whole = tmp_path / "whole"
    uninterrupted = run_cli(*job, "--out", whole, env=ONE_THREAD)
    assert uninterrupted.returncode == 1, uninterrupted.stderr  # two broken images

    out = tmp_path / "out"
    process = start_cli(*job, "--out", out, env=ONE_THREAD)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(_committed(out)) < 2:
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    committed = _committed(out)
    assert 2 <= len(committed) < 5 and not (out / "metrics.json").exists()  # killed in the middle

    again = run_cli(*job, "--out", out, env=ONE_THREAD)
    assert again.returncode == 1, again.stderr
    assert f"resuming {out}: {4 * len(committed)} of 20 images already done" in again.stderr
    parts, expected = _parts(out), _parts(whole)
    assert list(parts) == list(expected) and len(parts) == 5
    for name, arrays in expected.items():
        for key, value in arrays.items():
            np.testing.assert_array_equal(parts[name][key], value, err_msg=f"{name} {key}")
    resumed, reference = (json.loads((folder / "metrics.json").read_text()) for folder in (out, whole))
    assert _without_timings(resumed) == _without_timings(reference)
    assert resumed["errors"] == 2 and resumed["images"] == 18
    assert not [n for n in os.listdir(out / "predictions") if n.endswith(".tmp")]


def _committed(out) -> list[str]:
    try:
        return [n for n in os.listdir(out / "predictions") if n.startswith("part-")]
    except FileNotFoundError:
        return []
