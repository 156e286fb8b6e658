"""A fine-tuning run from start to finish: data, weights, the epoch loop, checkpoints and outputs.

Only rank 0 writes (module, checkpoint, metrics, plots, feature cache); under torchrun the other
processes wait at a barrier after each write, so every process sees the files once it goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .._version import __version__
from ..api import CLASSIFICATION, Module, load, save
from ..api.module import ModuleInfo
from ..errors import DatasetError, Irv2Error, OptionError
from ..weights.native import CONFIG_FILE
from . import report
from .checkpoint import CHECKPOINT_FILE, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import RUN_DEFINING, FinetuneConfig, canonical_dtype, option_flag
from .data import DataSplit, Skipped, find_unreadable, split_dataset
from .distributed import Distributed, setup
from .loop import evaluate, train_epoch
from .precision import autocast_dtype, autocast_name
from .progress import Progress
from .setups import Setup, linear_setup, network_setup

# metrics.json's "precision" values, the key before "dtype": still written for older readers
# (benchmarks/gpu_check.py reads it).
_OLD_PRECISION_NAMES = {"float32": "fp32", "bfloat16": "bf16"}
# Files of an earlier run that a fresh run (with overwrite) removes, so they can never be mistaken for its own.
_RUN_FILES = (CHECKPOINT_FILE, report.METRICS_FILE, report.CURVES_FILE, report.CONFUSION_FILE)


def run(data: str | os.PathLike[str], out: str | os.PathLike[str], config: FinetuneConfig):
    """Fine-tune as ``config`` says; see :func:`irv2.finetune.finetune`."""
    dist = setup(config.device)
    try:
        config.check_processes(dist.world_size)
        return _run(Path(data), Path(out), config, dist)
    finally:
        dist.close()


def _run(data: Path, out: Path, config: FinetuneConfig, dist: Distributed):
    progress = Progress(quiet=config.quiet, main=dist.is_main)
    state = _previous_state(out, config, dist, progress)
    split = split_dataset(
        data, val=config.val, val_fraction=config.val_fraction, seed=config.seed, scan=lambda paths: _scan(paths, dist)
    )
    if state is not None:
        _check_same_run(state, split, config, out)
    for skipped in split.skipped:
        progress.note(f"skipped {skipped.path}: {skipped.reason}")
    progress.note(
        f"{len(split.classes)} classes, {len(split.train)} training and {len(split.val)} validation images"
        + (f", {len(split.skipped)} skipped" if split.skipped else "")
    )
    base = load(config.weights, engine="plain")  # its network is trained, never run as loaded
    dtype = autocast_dtype(config.dtype, dist.device)
    if not report.have_matplotlib():
        progress.note("matplotlib is not installed: no plots (pip install 'irv2[finetune]')")
    if config.mode == "linear":
        run_setup = linear_setup(base.model, split, config, out=out, dist=dist, dtype=dtype, progress=progress)
    else:
        run_setup = network_setup(base.model, split, config, dist=dist)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    bad_epochs = start = 0
    # Order, augmentation and dropout have generators of their own, seeded per epoch and image; whatever
    # else draws from the global ones (DataLoader workers' seeds) draws the same in every process and rerun.
    torch.manual_seed(config.seed)
    if state is not None:
        run_setup.load_state(state)
        history, best, bad_epochs, start = state["history"], state["best"], state["bad_epochs"], state["epoch"]
        if len(state["rng"]) == dist.world_size:
            set_rng_state(state["rng"][dist.rank])
        progress.note(f"resuming after epoch {start} of {config.epochs}")
    context = _Context(data, out, config, dist, split, run_setup, base.info, dtype)
    for epoch in range(start, config.epochs):
        if config.patience and bad_epochs >= config.patience:
            break
        record, evaluation = _one_epoch(run_setup, epoch, config, dist, dtype, progress)
        history.append(record)
        improved = best is None or evaluation.loss < best["val_loss"]
        bad_epochs = 0 if improved else bad_epochs + 1
        if improved:
            best = {
                "epoch": epoch + 1,
                "val_loss": evaluation.loss,
                "val_accuracy": evaluation.accuracy,
                "predictions": evaluation.predictions.tolist(),
                "labels": evaluation.labels.tolist(),
            }
        rngs = dist.gather(rng_state())  # a collective: every process takes part, rank 0 keeps them
        if dist.is_main:
            if improved:
                _save_module(context)
            save_checkpoint(out / CHECKPOINT_FILE, _checkpoint(context, epoch + 1, history, best, bad_epochs, rngs))
            report.write_metrics(out, _metrics(context, history, best, bad_epochs, plots=False))
        dist.barrier()
        progress.note(
            f"epoch {epoch + 1}/{config.epochs}: train loss {record['train_loss']:.4f} acc "
            f"{100 * record['train_accuracy']:.1f}%, val loss {record['val_loss']:.4f} acc "
            f"{100 * record['val_accuracy']:.1f}%" + (" (best)" if improved else "")
        )
    if config.patience and bad_epochs >= config.patience and len(history) < config.epochs:
        progress.note(f"stopped early: no lower validation loss for {config.patience} epochs")
    if dist.is_main:
        _finish(context, history, best, bad_epochs, progress)
    dist.barrier()
    # PyTorch, as trained: converting for another engine is the next irv2.load's choice, not this return's.
    return load(out, device=dist.device, engine="torch"), history


class _Context:
    """What the writers need to know about the run, in one place."""

    def __init__(self, data, out, config, dist, split, run_setup, base_info, dtype) -> None:
        self.data, self.out, self.config, self.dist, self.split = data, out, config, dist, split
        self.setup: Setup = run_setup
        self.base_info: ModuleInfo = base_info
        self.dtype = dtype


def _one_epoch(run_setup: Setup, epoch: int, config: FinetuneConfig, dist: Distributed, dtype, progress: Progress):
    started = time.monotonic()
    run_setup.start_epoch(epoch)
    label = f"epoch {epoch + 1}/{config.epochs}"
    progress.start(f"{label} train", len(run_setup.train_loader))
    train = train_epoch(
        run_setup.net,
        run_setup.train_loader,
        run_setup.optimizer,
        run_setup.scheduler,
        objective=run_setup.objective,
        device=dist.device,
        dtype=dtype,
        accumulate=config.accumulate,
        dist=dist,
        progress=progress,
        set_training=run_setup.set_training,
    )
    progress.start(f"{label} validation", len(run_setup.val_loader))
    evaluation = evaluate(
        run_setup.eval_net,
        run_setup.val_loader,
        objective=run_setup.objective,
        device=dist.device,
        dtype=dtype,
        dist=dist,
        progress=progress,
        set_training=run_setup.set_training,
    )
    progress.end()
    record = {
        "epoch": epoch + 1,
        "train_loss": train["loss"],
        "train_accuracy": train["accuracy"],
        "val_loss": evaluation.loss,
        "val_accuracy": evaluation.accuracy,
        "lr": train["lr"],
        "seconds": time.monotonic() - started,
    }
    return record, evaluation


def _previous_state(out: Path, config: FinetuneConfig, dist: Distributed, progress: Progress):
    checkpoint = out / CHECKPOINT_FILE
    if config.resume:
        if checkpoint.is_file():
            return load_checkpoint(checkpoint)
        progress.note(f"no checkpoint in {out}: starting afresh")
    elif (checkpoint.exists() or (out / CONFIG_FILE).exists()) and not config.overwrite:
        raise Irv2Error(
            f"{out}: already holds a fine-tuning run or module; pass --resume to continue it, "
            "--overwrite to replace it, or choose another folder"
        )
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        for name in _RUN_FILES:
            (out / name).unlink(missing_ok=True)
    dist.barrier()
    return None


def _value(option: Any) -> Any:
    """An option as compared on resume: a path as its string, whichever type it was given as."""
    return os.fspath(option) if isinstance(option, os.PathLike) else option


def _check_same_run(state: dict[str, Any], split: DataSplit, config: FinetuneConfig, out: Path) -> None:
    before = dict(state["config"])
    if "dtype" not in before and "precision" in before:  # a checkpoint of an earlier irv2 named it so
        before["dtype"] = canonical_dtype(before["precision"])
    # A key the checkpoint lacks was not an option when it was written: nothing to compare.
    changed = [
        name for name in RUN_DEFINING if name in before and _value(before[name]) != _value(getattr(config, name))
    ]
    if changed:
        said = "; ".join(
            f"{option_flag(name)} ({name}) was {before[name]!r}, now {getattr(config, name)!r}" for name in changed
        )
        raise OptionError(
            f"{out / CHECKPOINT_FILE}: --resume continues the run the checkpoint holds, and these options differ "
            f"from it: {said}. Resume with the checkpoint's values, or start a new run with --overwrite or "
            "another --out"
        )
    same_data = (
        state["classes"] == split.classes
        and state["train"] == [s.path for s in split.train]
        and state["val"] == [s.path for s in split.val]
    )
    if not same_data:
        raise DatasetError(
            f"{out / CHECKPOINT_FILE}: the dataset changed since the checkpoint was written "
            "(classes or images differ); resuming would mix two runs"
        )


def _scan(paths: Sequence[str], dist: Distributed) -> list[Skipped]:
    """Unreadable files among ``paths``: each process checks its shard, and all learn the union."""
    mine = [paths[i] for i in dist.shard(len(paths))]
    found = {s.path: s for part in dist.gather(find_unreadable(mine)) for s in part}
    return [found[p] for p in paths if p in found]


def _save_module(context: _Context) -> None:
    config, split = context.config, context.split
    info = ModuleInfo(
        num_classes=len(split.classes),
        labels=list(split.classes),
        image_size=(config.image_size, config.image_size),
        default_signature=CLASSIFICATION,
        preprocessing={
            "recipe": "tf_slim_eval",
            "central_fraction": 0.875,
            "resize": "bilinear_tf_legacy",
            "image_size": config.image_size,
        },
        provenance={
            "finetuned_from": context.base_info.provenance.get("source", config.weights),
            "finetune": {
                "mode": config.mode,
                "blocks": config.blocks,
                "data": str(context.data),
                "irv2_version": __version__,
            },
        },
    )
    save(Module(context.setup.export(), info), context.out)


def _checkpoint(context: _Context, epoch: int, history, best, bad_epochs: int, rngs: list) -> dict[str, Any]:
    run_setup = context.setup
    return {
        "epoch": epoch,
        "config": context.config.to_dict(),
        "classes": list(context.split.classes),
        "train": [s.path for s in context.split.train],
        "val": [s.path for s in context.split.val],
        "trainable": run_setup.trainable.state_dict(),
        "optimizer": run_setup.optimizer.state_dict(),
        "scheduler": run_setup.scheduler.state_dict(),
        "history": history,
        "best": best,
        "bad_epochs": bad_epochs,
        "rng": rngs,
    }


def _metrics(context: _Context, history, best, bad_epochs: int, *, plots: bool) -> dict[str, Any]:
    config, split = context.config, context.split
    stopped = bool(config.patience and bad_epochs >= config.patience and len(history) < config.epochs)
    matrix = report.confusion_matrix(best["labels"], best["predictions"], len(split.classes)) if best else None
    return {
        "irv2_version": __version__,
        "mode": config.mode,
        "classes": list(split.classes),
        "val_accuracy": best["val_accuracy"] if best else None,
        "val_loss": best["val_loss"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "epochs_run": len(history),
        "stopped_early": stopped,
        "history": history,
        "num_train": len(split.train),
        "num_val": len(split.val),
        "train_counts": split.counts("train"),
        "val_counts": split.counts("val"),
        "skipped": [{"path": s.path, "reason": s.reason} for s in split.skipped],
        "confusion_matrix": matrix.tolist() if matrix is not None else None,
        "dtype": autocast_name(context.dtype),
        "precision": _OLD_PRECISION_NAMES[autocast_name(context.dtype)],
        "world_size": context.dist.world_size,
        "aux_logits": context.setup.aux,
        "plots": plots,
        "options": {"data": str(context.data), "out": str(context.out), **config.to_dict()},
        **({"trained_units": context.setup.info["trained_units"]} if "trained_units" in context.setup.info else {}),
    }


def _finish(context: _Context, history, best, bad_epochs: int, progress: Progress) -> None:
    out = context.out
    if not (out / CONFIG_FILE).exists():  # e.g. the module was deleted between a run and its --resume
        _save_module(context)
    plots = report.have_matplotlib() and bool(history)
    if plots:
        report.plot_curves(out, history)
        matrix = report.confusion_matrix(best["labels"], best["predictions"], len(context.split.classes))
        title = f"validation, epoch {best['epoch']} (accuracy {100 * best['val_accuracy']:.1f}%)"
        report.plot_confusion(out, matrix, context.split.classes, title)
    report.write_metrics(out, _metrics(context, history, best, bad_epochs, plots=plots))
    if best is not None:
        progress.note(
            f"saved the module from epoch {best['epoch']} (val accuracy {100 * best['val_accuracy']:.1f}%, "
            f"loss {best['val_loss']:.4f}) to {out}"
        )
