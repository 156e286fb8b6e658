"""The speed options of ``irv2 classify`` / ``irv2 features`` and ``irv2 bench``, run as a user runs them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from bfloat16_support import BFLOAT16_HERE, assert_cli_refused


@pytest.fixture(scope="module")
def big_jpegs(tmp_path_factory, photo_arrays):
    """Two 6-megapixel JPEGs (3000 x 2000) and one small PNG."""
    root = tmp_path_factory.mktemp("big")
    for name in ("chelsea", "coffee"):
        Image.fromarray(photo_arrays[name]).resize((3000, 2000), Image.Resampling.BICUBIC).save(
            root / f"{name}.jpg", quality=90
        )
    Image.fromarray(photo_arrays["rocket"]).save(root / "rocket.png")
    return root


def _rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_workers_and_decoding_modes(irv2_cli, weights_dir, big_jpegs):
    """Threads change nothing; --exact-decode changes only the large JPEGs, and only slightly."""
    args = ("classify", big_jpegs, "-w", weights_dir, "-f", "json", "-k", "3", "-q")
    inline = irv2_cli(*args, "--workers", "0")
    threaded = irv2_cli(*args, "--workers", "2")
    exact = irv2_cli(*args, "--exact-decode")
    for run in (inline, threaded, exact):
        assert run.returncode == 0, run.stderr
    assert _rows(inline.stdout) == _rows(threaded.stdout)
    draft_rows, exact_rows = _rows(inline.stdout), _rows(exact.stdout)
    assert [r["path"] for r in draft_rows] == [r["path"] for r in exact_rows]
    for draft_row, exact_row in zip(draft_rows, exact_rows, strict=True):
        if draft_row["path"].endswith(".png"):
            assert draft_row == exact_row
        else:
            assert draft_row["predictions"][0]["index"] == exact_row["predictions"][0]["index"]


def test_bfloat16_classify_agrees_with_float32(irv2_cli, weights_dir, big_jpegs):
    bf16 = irv2_cli("classify", big_jpegs, "-w", weights_dir, "-f", "json", "-k", "1", "-q", "--dtype", "bfloat16")
    if not BFLOAT16_HERE:
        return assert_cli_refused(bf16)
    fp32 = irv2_cli("classify", big_jpegs, "-w", weights_dir, "-f", "json", "-k", "1", "-q")
    assert fp32.returncode == 0 and bf16.returncode == 0, bf16.stderr
    for a, b in zip(_rows(fp32.stdout), _rows(bf16.stdout), strict=True):
        assert a["predictions"][0]["index"] == b["predictions"][0]["index"]
        assert abs(a["predictions"][0]["score"] - b["predictions"][0]["score"]) < 0.02


def test_features_in_bfloat16(irv2_cli, weights_dir, big_jpegs, tmp_path):
    out32, out16 = tmp_path / "f32.npz", tmp_path / "bf16.npz"
    unknown = irv2_cli("features", big_jpegs, "-w", weights_dir, "-o", out16, "-q", "--dtype", "bfloat8")
    assert unknown.returncode == 2 and "unknown dtype 'bfloat8'; use one of float32, tf32" in unknown.stderr
    run = irv2_cli("features", big_jpegs, "-w", weights_dir, "-o", out16, "-q", "--dtype", "bf16")
    if not BFLOAT16_HERE:
        assert not out16.exists()
        return assert_cli_refused(run)
    assert run.returncode == 0, run.stderr  # bf16 is bfloat16, as irv2.load spells it too
    assert irv2_cli("features", big_jpegs, "-w", weights_dir, "-o", out32, "-q").returncode == 0
    a, b = np.load(out32)["features"], np.load(out16)["features"]
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.999


def test_float16_on_cpu_is_a_usage_error(irv2_cli, weights_dir, big_jpegs):
    run = irv2_cli("classify", big_jpegs, "-w", weights_dir, "--dtype", "float16")
    assert run.returncode == 2
    assert "float16 runs on GPUs" in run.stderr and "Traceback" not in run.stderr


def test_bench_json(irv2_cli, big_jpegs):
    """``irv2 bench --random --json``: every figure present and plausible, end to end against the network."""
    run = irv2_cli(
        "bench", "--random", "--json", "-b", "1,2", "--seconds", "0.2", "--dtype", "float32",
        "--images", big_jpegs, "--limit", "3",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["machine"]["cores"] >= 1 and report["machine"]["torch"]
    assert 0 < report["load_s"] < 60
    cold = report["cold_start"]
    assert cold["total_s"] >= cold["load_s"] + cold["first_prediction_s"] > 0
    rows = report["results"]
    setups = [(r["dtype"], r["engine"], r["batch_size"]) for r in rows]
    assert setups == [("float32", "torch", 1), ("float32", "torch", 2)]
    for row in rows:
        assert row["images_per_s"] > 0 and row["latency_ms_p90"] >= row["latency_ms_p50"] > 0
        assert row["runs"] >= 3 and row["peak_memory_mib"] > 100
    (e2e,) = report["end_to_end"]
    assert e2e["images"] == 3 and e2e["images_per_s"] > 0 and e2e["ratio_to_model"] > 0
    assert 2 < e2e["mean_megapixels"] < 7  # two 6 MP JPEGs and a small PNG


def test_bench_text_and_errors(irv2_cli):
    run = irv2_cli("bench", "--random", "-b", "1", "--seconds", "0.2", "--no-cold-start", "--engine", "plain")
    assert run.returncode == 0, run.stderr
    assert "float32   plain" in run.stdout and "img/s" in run.stdout
    bad = irv2_cli("bench", "--random", "-b", "0")
    assert bad.returncode == 2 and "batch sizes must be at least 1" in bad.stderr
    gpu = irv2_cli("bench", "--random", "--dtype", "float16")
    assert gpu.returncode == 2 and "float16 runs on GPUs" in gpu.stderr
