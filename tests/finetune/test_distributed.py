"""``torchrun`` with two CPU processes (gloo) against one process: the same run, the same numbers.

Linear mode makes the comparison sharp. Features are deterministic (inference mode); each process
extracts half and they are all-gathered. With dropout off, the head then sees the same global batches in
both runs (the same seeded permutation; two processes with batch 8 split each batch of 16), and DDP's
average of the two per-process mean gradients equals the one-process mean gradient. What remains is float
rounding: convolutions over batches of other sizes give features that differ by about 1e-6 of their
largest value, and gradients are summed in another order; measured, losses differ by 4e-7. So losses
must agree to 1e-4 and accuracies exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from finetune_support import cpu_env
from shapes import write_dataset

from cli_runner import run_irv2


@pytest.mark.timeout(600)
def test_two_processes_match_one(tmp_path, start_weights):
    data = tmp_path / "data"
    write_dataset(data, 10, seed=3)  # 4 classes: 32 training and 8 validation images
    common = [
        "finetune",
        "--data",
        data,
        "--weights",
        start_weights,
        "--mode",
        "linear",
        "--image-size",
        96,
        "--epochs",
        6,
        "--dropout-rate",
        0,
        "--precision",
        "fp32",
        "--device",
        "cpu",
        "--quiet",
    ]
    one = run_irv2(*common, "--out", tmp_path / "one", "--batch-size", 16)
    assert one.returncode == 0, one.stderr
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "irv2",
        *map(str, common),
        "--out",
        str(tmp_path / "two"),
        "--batch-size",
        "8",
    ]
    # Two processes share two cores: one thread each, so they do not fight over them.
    two = subprocess.run(command, capture_output=True, text=True, env=cpu_env(threads=1), timeout=500)
    assert two.returncode == 0, two.stderr
    assert two.stdout.strip() == str(tmp_path / "two")  # rank 0 alone reports

    single = json.loads((tmp_path / "one" / "metrics.json").read_text())
    multi = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert single["world_size"] == 1 and multi["world_size"] == 2
    assert multi["classes"] == single["classes"] and multi["num_val"] == single["num_val"] == 8
    for a, b in zip(single["history"], multi["history"], strict=True):
        for key in ("train_loss", "val_loss"):
            assert abs(a[key] - b[key]) < 1e-4, (key, a, b)
        assert a["train_accuracy"] == b["train_accuracy"] and a["val_accuracy"] == b["val_accuracy"]
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-9)
    assert multi["val_accuracy"] == single["val_accuracy"] and multi["best_epoch"] == single["best_epoch"]
    assert multi["confusion_matrix"] == single["confusion_matrix"]

    (cache_one,) = (tmp_path / "one" / "cache").glob("*.npz")
    (cache_two,) = (tmp_path / "two" / "cache").glob("*.npz")
    assert cache_one.name == cache_two.name
    features_one, features_two = np.load(cache_one)["features"], np.load(cache_two)["features"]
    assert np.abs(features_two - features_one).max() <= 1e-5 * np.abs(features_one).max()  # measured: 1.4e-6
    assert not list((tmp_path / "two").glob(".*tmp*"))  # rank 0 wrote each file once, atomically
