"""Short runs through the Python API: resume, last-blocks freezing, skipped files, refused outputs."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from shapes import CLASSES

import irv2
from irv2.errors import OptionError
from irv2.finetune.checkpoint import load_checkpoint, save_checkpoint

# Tiny runs: 96 px (the smallest comfortable size), fp32 so the numbers do not depend on the CPU.
FAST = {"image_size": 96, "batch_size": 8, "dtype": "float32", "quiet": True}


def test_resume_continues_at_the_next_epoch_with_history(tmp_path, small_dir, start_weights, capsys):
    out = tmp_path / "out"
    _, first = irv2.finetune(small_dir, out, weights=start_weights, epochs=1, **FAST)
    assert [h["epoch"] for h in first] == [1]
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["epoch"] == 1 and state["config"]["dtype"] == "float32"
    # A checkpoint of an earlier irv2 names the options as it did (precision, sync_bn): it still resumes.
    options = state["config"]
    options["precision"] = {"float32": "fp32"}[options.pop("dtype")]
    options["sync_bn"] = False
    save_checkpoint(out / "checkpoint.pt", {k: v for k, v in state.items() if k not in ("format", "version")})
    options = {**FAST, "quiet": False}
    module, history = irv2.finetune(small_dir, out, weights=start_weights, epochs=2, resume=True, **options)
    notes = capsys.readouterr().err
    assert "resuming after epoch 1 of 2" in notes and "using cached features" in notes
    assert "epoch 1/2" not in notes and "epoch 2/2" in notes
    assert [h["epoch"] for h in history] == [1, 2] and history[0] == first[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"] == history and metrics["epochs_run"] == 2
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["epoch"] == 2 and state["scheduler"]["last_epoch"] == 4  # 12 training images, batches of 8
    assert module.labels == sorted(CLASSES[:3])
    # Nothing to do once every epoch has run: the outputs are written again, the history is unchanged.
    _, again = irv2.finetune(small_dir, out, weights=start_weights, epochs=2, resume=True, **FAST)
    assert again == history


def test_resume_refuses_other_options_and_plain_reruns(tmp_path, small_dir, start_weights):
    out = tmp_path / "out"
    irv2.finetune(small_dir, out, weights=start_weights, epochs=1, **FAST)
    with pytest.raises(irv2.Irv2Error, match="already holds a fine-tuning run"):
        irv2.finetune(small_dir, out, weights=start_weights, epochs=1, **FAST)
    for option, value, said in [
        ("image_size", 100, r"--image-size \(image_size\) was 96, now 100"),
        ("lr", 0.5, r"--lr \(lr\) was 0\.001, now 0\.5"),
        ("batch_size", 4, r"--batch-size \(batch_size\) was 8, now 4"),
        ("dtype", "bfloat16", r"--dtype \(dtype\) was 'float32', now 'bfloat16'"),
        ("optimizer", "sgd", r"--optimizer \(optimizer\) was 'adamw', now 'sgd'"),
        ("weights", str(start_weights) + "-other", r"--weights \(weights\) was"),
    ]:
        with pytest.raises(OptionError, match=said) as refused:
            options = {"weights": start_weights, **FAST, option: value}
            irv2.finetune(small_dir, out, epochs=2, resume=True, **options)
        assert "--overwrite" in str(refused.value) and load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    (small_dir / CLASSES[0] / "extra.png").write_bytes((small_dir / CLASSES[0] / f"{CLASSES[0]}_001.png").read_bytes())
    with pytest.raises(irv2.DatasetError, match="the dataset changed"):
        irv2.finetune(small_dir, out, weights=start_weights, epochs=2, resume=True, **FAST)
    _, history = irv2.finetune(small_dir, out, weights=start_weights, epochs=1, overwrite=True, **FAST)
    assert len(history) == 1


def test_last_blocks_trains_only_the_last_units(tmp_path, small_dir, start_weights):
    out = tmp_path / "out"
    module, _ = irv2.finetune(
        small_dir,
        out,
        weights=start_weights,
        mode="last-blocks",
        blocks=2,
        epochs=1,
        lr=1e-2,
        **{**FAST, "batch_size": 4},
    )
    before = irv2.load(start_weights).model.state_dict()
    after = {key: value.cpu() for key, value in module.model.state_dict().items()}  # the run may use a GPU
    changed = {key.split(".")[0] for key in before if key in after and not torch.equal(before[key], after[key])}
    # block8 and conv2d_7b train (their BatchNorm moving averages move too); the classifier is new.
    assert changed == {"block8", "conv2d_7b", "classif"}
    assert module.model.aux_logits is None
    assert json.loads((out / "metrics.json").read_text())["trained_units"] == ["block8", "conv2d_7b"]


def test_csv_with_missing_and_unreadable_files(tmp_path, small_dir, start_weights, capsys):
    rows = ["path,label"]
    for folder in sorted(small_dir.iterdir()):
        rows += [f"small/{folder.name}/{p.name},{folder.name}" for p in sorted(folder.iterdir())]
    (small_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    rows += ["small/broken.jpg,disc", "small/missing.png,speckle"]
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    module, _ = irv2.finetune(csv_path, out, weights=start_weights, epochs=1, **{**FAST, "quiet": False})
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == sorted(CLASSES[:3]) == module.labels
    skipped = {s["path"]: s["reason"] for s in metrics["skipped"]}
    assert set(skipped) == {str(small_dir / "broken.jpg"), str(small_dir / "missing.png")}
    assert skipped[str(small_dir / "missing.png")] == "no such file" and skipped[str(small_dir / "broken.jpg")]
    assert metrics["num_train"] + metrics["num_val"] == 15
    notes = capsys.readouterr().err
    assert f"skipped {small_dir / 'broken.jpg'}" in notes and "2 skipped" in notes


def test_a_grayscale_image_trains_like_rgb(tmp_path, small_dir, start_weights):
    path = small_dir / CLASSES[1] / "grey.png"
    Image.open(small_dir / CLASSES[1] / "disc_001.png").convert("L").save(path)
    _, history = irv2.finetune(
        small_dir, tmp_path / "out", weights=start_weights, mode="full", epochs=1, **{**FAST, "batch_size": 16}
    )
    assert len(history) == 1


def test_early_stopping_on_validation_loss(tmp_path, small_dir, start_weights):
    out = tmp_path / "out"
    # AdamW moves each weight by about lr per step: at 1e-30 nothing changes, so the validation loss never
    # improves after epoch 1 and patience 2 ends the run after epoch 3.
    _, history = irv2.finetune(small_dir, out, weights=start_weights, epochs=10, patience=2, lr=1e-30, **FAST)
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(history) == metrics["epochs_run"] == 3
    assert metrics["stopped_early"] and metrics["best_epoch"] == 1
    _, resumed = irv2.finetune(
        small_dir, out, weights=start_weights, epochs=10, patience=2, lr=1e-30, resume=True, **FAST
    )
    assert resumed == history  # a run that stopped early stays stopped
