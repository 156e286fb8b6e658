"""``irv2 finetune`` end to end, as a user runs it: linear mode learns drawn classes, full mode runs, the
output folder is a module that ``irv2.load`` and ``irv2 classify`` use with the new labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from finetune_support import IMAGE_SIZE
from shapes import CLASSES

import irv2
from cli_runner import run_irv2

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory, shapes_dir, start_weights):
    out = tmp_path_factory.mktemp("linear") / "out"
    result = run_irv2(
        "finetune",
        "--data",
        shapes_dir,
        "--out",
        out,
        "--weights",
        start_weights,
        "--mode",
        "linear",
        "--image-size",
        IMAGE_SIZE,
        "--epochs",
        30,
        "--batch-size",
        16,
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    return result, out


def test_linear_mode_learns_the_classes(linear_run):
    result, out = linear_run
    assert result.stdout.strip() == str(out)
    assert result.stderr == ""  # --quiet
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == sorted(CLASSES)
    assert metrics["val_accuracy"] >= 0.95, metrics["history"]
    assert metrics["num_train"] == 160 and metrics["num_val"] == 40
    assert metrics["val_counts"] == dict.fromkeys(sorted(CLASSES), 10)
    assert len(metrics["history"]) == metrics["epochs_run"] == 30
    assert set(metrics["history"][0]) == {
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
    }
    best = metrics["history"][metrics["best_epoch"] - 1]
    assert best["val_loss"] == metrics["val_loss"] == min(h["val_loss"] for h in metrics["history"])
    assert np.asarray(metrics["confusion_matrix"]).sum() == 40
    assert metrics["skipped"] == [] and metrics["options"]["mode"] == "linear" and not metrics["aux_logits"]
    for name in ("training_curves.png", "confusion_matrix.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert (out / "checkpoint.pt").is_file() and len(list((out / "cache").glob("features-*.npz"))) == 1


def test_saved_module_classifies_held_out_images(linear_run, held_out):
    _, out = linear_run
    module = irv2.load(out)
    assert module.num_classes == 4 and module.labels == sorted(CLASSES)
    assert module.expected_image_size == (IMAGE_SIZE, IMAGE_SIZE) and module.model.aux_logits is None
    paths = [p for kind in sorted(CLASSES) for p in held_out[kind]]
    truth = [kind for kind in sorted(CLASSES) for _ in held_out[kind]]
    logits = module(np.stack([irv2.load_image(p, size=IMAGE_SIZE) for p in paths]))
    predicted = [module.labels[i] for i in logits.argmax(1)]
    assert sum(p == t for p, t in zip(predicted, truth, strict=True)) >= len(truth) - 1, predicted

    result = run_irv2("classify", "--weights", out, *paths, "--format", "json", "-k", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    for row in rows:
        assert [p["label"] for p in row["predictions"]] == [module.labels[p["index"]] for p in row["predictions"]]
        assert {p["label"] for p in row["predictions"]} <= set(CLASSES)


def test_full_mode_runs_and_saves_a_loadable_module(tmp_path, small_dir, start_weights):
    out = tmp_path / "full"
    result = run_irv2(
        "finetune",
        "--data",
        small_dir,
        "--out",
        out,
        "--weights",
        start_weights,
        "--mode",
        "full",
        "--image-size",
        96,
        "--epochs",
        1,
        "--batch-size",
        4,
        "--color-jitter",
        "--dtype",
        "float32",
    )
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stderr and "saved the module" in result.stderr
    module = irv2.load(out)
    assert module.labels == sorted(CLASSES[:3]) and module.num_classes == 3
    # At 96 px the AuxLogits head cannot run (it needs 299 px); it is dropped, not saved untrained.
    assert module.model.aux_logits is None
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mode"] == "full" and metrics["dtype"] == "float32" and not metrics["aux_logits"]
    assert metrics["precision"] == "fp32"  # the key and value before "dtype", kept for older readers
    assert len(metrics["history"]) == 1 and np.isfinite(metrics["history"][0]["train_loss"])
    assert module(np.random.default_rng(0).random((2, 96, 96, 3), np.float32)).shape == (2, 3)


def test_errors_are_one_line_with_exit_status(tmp_path, small_dir, start_weights):
    (small_dir / "empty_class").mkdir()
    result = run_irv2("finetune", "--data", small_dir, "--out", tmp_path / "o", "--weights", start_weights)
    assert result.returncode == 1
    assert result.stderr.startswith("irv2: error: ") and result.stderr.count("\n") == 1
    assert "empty_class" in result.stderr and "no images" in result.stderr

    usage = run_irv2("finetune", "--data", small_dir, "--out", tmp_path / "o", "--mode", "last-blocks")
    assert usage.returncode == 2 and "--blocks" in usage.stderr and "between 1 and 49" in usage.stderr
    missing = run_irv2("finetune", "--out", tmp_path / "o")
    assert missing.returncode == 2 and "--data" in missing.stderr
    dtype = run_irv2("finetune", "--data", small_dir, "--out", tmp_path / "o", "--dtype", "float16")
    assert dtype.returncode == 2 and "--dtype: invalid choice: 'float16'" in dtype.stderr


def test_precision_is_a_deprecated_name_of_dtype(tmp_path, small_dir, start_weights):
    (small_dir / "empty_class").mkdir()  # so that the run stops right after the options were taken
    old = run_irv2("finetune", "--data", small_dir, "--out", tmp_path / "o", "-w", start_weights, "--precision", "bf16")
    assert old.returncode == 1
    warning, error = old.stderr.splitlines()
    assert warning == "irv2: warning: --precision is deprecated; use --dtype bfloat16"
    assert error.startswith("irv2: error: ") and "empty_class" in error
    both = run_irv2("finetune", "--data", small_dir, "--out", tmp_path / "o", "--dtype", "fp32", "--precision", "bf16")
    assert (
        both.returncode == 2
        and both.stderr == "irv2: error: --precision is the old name of --dtype; give --dtype only\n"
    )
    assert "--precision" not in run_irv2("finetune", "--help").stdout  # hidden
