"""``irv2.evaluate(module_or_handle, data, ...)``: accuracy, calibration and speed of the weights on labelled
images, for one or several configurations in one pass."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..api import Module
from ..atomic import write_text
from ..batch.inputs import Input
from ..batch.runner import DEFAULT_CHUNK_SIZE
from ..errors import OptionError
from .classes import class_space
from .layouts import read_layout
from .metrics import TOP_K, confusion
from .report import REPORT_FILE, write_report
from .runner import predict
from .state import PredictionStore, job_settings

if TYPE_CHECKING:
    import torch

    from .configurations import Source
from .summary import summarise

METRICS_FILE = "metrics.json"


def evaluate(
    module_or_handle: Source,
    data: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    synsets: str | os.PathLike[str] | None = None,
    dtypes: Sequence[str] | None = None,
    engines: Sequence[str] | None = None,
    calibration: np.ndarray | Sequence[str | os.PathLike[str]] | None = None,
    device: str | torch.device | None = None,
    out: str | os.PathLike[str] | None = None,
    batch_size: int = 8,
    workers: int | None = None,
    draft: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overwrite: bool = False,
    worst: int = 10,
    quiet: bool = False,
) -> dict[str, Any]:
    """Score the weights on labelled images: top-1 and top-5, per class, calibration, speed; for several
    configurations at once, each image decoded once.

    Args:
        module_or_handle: a loaded ``irv2.Module``, or what ``irv2.load`` takes (None: the default weights).
        data: ImageNet's folder layout (``val/n01440764/*.JPEG``) or any folder of one subfolder per class; a CSV of
            ``path,label`` rows; or a flat folder of images with Kaggle's ``LOC_val_solution.csv`` or the devkit's
            ``ILSVRC2012_validation_ground_truth.txt`` (found beside or above it, or given as ``labels``).
            docs/evaluate.md describes each layout.
        labels: the Kaggle or devkit label file of a flat folder.
        synsets: for the devkit's ground truth, a file with one synset per line in class-ID order, instead of the
            devkit's ``meta.mat`` beside it (which needs ``irv2[devkit]``).
        dtypes, engines: the configurations to compare (``irv2.engine.PRECISIONS`` and ``ENGINES`` names): every
            dtype with every engine, dtypes first; the first configuration is the reference. None: the module as
            it is, or ``irv2.load``'s defaults for a handle.
        calibration: images that calibrate an int8 configuration, as ``irv2.load`` takes them.
        device: where to run (default: the module's device, or the CPU).
        out: a folder for ``metrics.json``, ``report.html`` and the resumable ``predictions/``; None keeps nothing.
        batch_size: images per forward pass.
        workers: decoding threads (None: one per core, at most 8).
        draft: decode large JPEGs at reduced scale before the exact crop and resize, as ``irv2 classify`` does;
            False reproduces TF-Slim's preprocessing bit for bit (``--exact-decode``).
        chunk_size: images per committed part in ``out`` (a rerun after an interruption redoes at most one).
        overwrite: discard the predictions an earlier evaluation with other settings left in ``out``.
        worst: how many of the worst classes to list, with examples.
        quiet: no progress bar or notes on stderr.

    Returns:
        The content of ``metrics.json``: ``top1``, ``top5`` (fractions of the images read), ``images`` (read),
        ``errors`` (unreadable, left out of every score) and ``error_files``, ``per_class``, ``ece`` and
        ``reliability``, ``worst_classes`` for the first configuration; ``runs``: each configuration's
        scores, network speed and ``agreement`` with the first (top-1 agreement, mean KL divergence); and the
        data, weights, timings, machine and versions. docs/evaluate.md lists every field.

    Raises:
        LayoutError: data in no layout irv2 reads; LabelMismatchError: labels that do not match the images or
            the weights (naming both).
        OptionError: an option out of range, or a configuration that cannot run here.
        JobError: ``out`` holds the predictions of an evaluation with other settings.
        Irv2Error: weights that cannot be loaded.
    """
    for name, value, least in (("batch_size", batch_size, 1), ("chunk_size", chunk_size, 1), ("worst", worst, 0)):
        if not isinstance(value, int) or value < least:
            raise OptionError(f"{name} must be a whole number of at least {least}, got {value!r}")
    from .configurations import load_configurations, plan_configurations

    plan = plan_configurations(module_or_handle, dtypes, engines, device=device)  # usage errors first
    images = read_layout(data, labels, synsets)
    modules = load_configurations(plan, calibration=calibration, progress=False if quiet else None)
    reference, weights = modules[0], _weights_name(module_or_handle)
    if not reference.num_classes:
        raise OptionError(f"{weights}: a feature-vector module has no classes to score")
    space = class_space(reference.num_classes, reference.labels)
    targets = space.indices(images.labels, source=images.label_file or images.data, weights=weights)
    inputs = [Input(path) for path in images.paths]
    store = None
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        store = PredictionStore(out, inputs, job_settings(modules, draft=draft), chunk_size=chunk_size, weights=weights)
        store.prepare(overwrite=overwrite)
        if overwrite:  # the scores of what was discarded must not outlive it, should this run be cut short
            for name in (METRICS_FILE, REPORT_FILE):
                (Path(out) / name).unlink(missing_ok=True)
    predictions = predict(
        modules,
        inputs,
        k=min(TOP_K, reference.num_classes),
        store=store,
        chunk_size=chunk_size,
        batch_size=batch_size,
        workers=workers,
        draft=draft,
        quiet=quiet,
        note=None if quiet else _note,
    )
    metrics = summarise(
        images, targets, space, modules, predictions, weights=weights, skipped=plan.skipped, worst=worst
    )
    if out is not None:
        good = predictions["errors"] == ""
        matrix = confusion(targets[good], predictions["top_index"][0][good, 0], space)
        write_text(Path(out) / METRICS_FILE, json.dumps(metrics, indent=1) + "\n")
        write_report(Path(out) / REPORT_FILE, metrics, matrix)
    return metrics


def _weights_name(source: Source) -> str:
    """The weights as people know them: the handle given, or where a module was loaded from."""
    if isinstance(source, Module):
        provenance = source.info.provenance
        return str(provenance.get("loaded_from") or provenance.get("source") or "a module in memory")
    if source is None:
        return "default"
    text = os.fspath(source)
    return os.path.abspath(text) if os.path.exists(text) else text


def _note(message: str) -> None:
    print(f"irv2: {message}", file=sys.stderr, flush=True)
