"""benchmarks/gpu_check.py, the prepared run for a session lent a GPU, run here in its CPU dry-run mode.

CI has no GPU, so this cannot check CUDA itself: it checks that the script runs end to end and reports what
it claims to (agreement with the float64 reference, the CLI against the CPU, the bench figures), so that a
GPU session does not spend its few minutes on a broken script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bfloat16_support import BFLOAT16_HERE

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_on_cpu(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "IRV2_HOME": str(tmp_path / "home")}
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path), "--device", "cpu"]
    done = subprocess.run([*command, "--quick"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())

    agreement = {(row["dtype"], row["engine"]): row for row in report["agreement"]}
    # bfloat16 only where this CPU runs it (irv2 refuses it on CPUs without bfloat16 instructions).
    bfloat16 = {("bfloat16", "torch")} if BFLOAT16_HERE else set()
    assert set(agreement) == {("float32", "torch"), ("float32", "plain"), *bfloat16}
    for engine in ("torch", "plain"):
        assert agreement["float32", engine]["within_1e-4"] is True
        assert agreement["float32", engine]["relative_error"] < 1e-5
    if BFLOAT16_HERE:
        assert 1e-4 < agreement["bfloat16", "torch"]["relative_error"] < 5e-2  # rounded, but close

    cli = report["cli"]
    assert cli["photos"] == 4
    assert cli["cpu float32"] == {"top1_agreement": 4, "max_top1_score_difference": 0.0}
    if BFLOAT16_HERE:
        assert cli["cpu bfloat16"]["top1_agreement"] >= 3
    else:
        assert "cpu bfloat16" not in cli

    finetune = report["finetune"]
    assert finetune["labels"] == ["blue", "red"] and finetune["logits_shape"] == [2, 2]
    assert finetune["logits_finite"] and finetune["dtype"] in ("bfloat16", "float32")  # auto: what the CPU runs fast
    assert len(finetune["history"]) == 1

    bench = report["bench"]
    measured = {(row["dtype"], row["batch_size"]) for row in bench["results"]}
    assert measured == {("float32", 1), ("float32", 2), *((("bfloat16", 1), ("bfloat16", 2)) if BFLOAT16_HERE else ())}
    assert all(row["images_per_s"] > 0 for row in bench["results"])
    assert [row["images"] for row in bench["end_to_end"]] == [4] * (2 if BFLOAT16_HERE else 1)  # one per dtype
    assert "bench_compiled" not in report  # --quick skips torch.compile

    summary = json.loads(done.stdout)
    assert summary["agreement"]["float32 torch"] == agreement["float32", "torch"]["relative_error"]
    assert (summary["best_images_per_s"].get("bfloat16 torch", 0) > 0) == BFLOAT16_HERE
