"""``irv2.evaluate(module_or_handle, data, ...)``: accuracy, calibration and speed of the weights on labelled
images, for one or several configurations in one pass."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..api import Module
from ..atomic import write_text
from ..batch.inputs import Input
from ..batch.runner import DEFAULT_CHUNK_SIZE
from ..errors import LayoutError, OptionError
from ..labels import imagenet_synsets
from .classes import ClassSpace, class_space
from .labelled import LabelledImages
from .layouts import IMAGENET_V2, LAYOUTS, as_imagenet_v2, is_imagenet_v2, read_layout
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
    real_labels: str | os.PathLike[str] | None = None,
    layout: str | None = None,
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
            devkit's ``meta.mat`` beside it (which needs ``irv2[devkit]``) or the order irv2 ships; either must
            agree with that order.
        real_labels: ReaL's ``real.json``, labelling the validation images of ``data`` (a top-1 hit is a
            prediction in the image's set; images with an empty set are left out and counted).
        layout: one of ``irv2.evaluate.LAYOUTS`` to insist on (None: found from ``data``); ``imagenet-v2`` reads
            folders ``0`` to ``999`` as ImageNet-V2's, found by itself for weights with ImageNet's classes.
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
    if layout is not None and layout not in LAYOUTS:
        raise OptionError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    images = read_layout(data, labels, synsets, real_labels=real_labels)
    if layout not in (None, IMAGENET_V2) and layout != images.layout:  # before the weights load
        hint = " (ReaL's labels: --real-labels FILE)" if layout == "real" else ""
        raise LayoutError(f"{images.data}: in the {images.layout} layout, not the {layout} layout{hint}")
    modules = load_configurations(plan, calibration=calibration, progress=False if quiet else None)
    reference, weights = modules[0], _weights_name(module_or_handle)
    if not reference.num_classes:
        raise OptionError(f"{weights}: a feature-vector module has no classes to score")
    space = class_space(reference.num_classes, reference.labels)
    images = _resolved_layout(images, layout, space, note=None if quiet else _note)
    targets = space.targets(images.labels, source=images.label_file or images.data, weights=weights)
    scored = _scored_outputs(images, space, note=None if quiet else _note)
    inputs = [Input(path, error=images.errors.get(path)) for path in images.paths]
    store = None
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        settings = job_settings(modules, draft=draft, batch_size=batch_size, scored=scored)
        store = PredictionStore(out, inputs, settings, chunk_size=chunk_size, weights=weights)
        store.prepare(overwrite=overwrite)
        if overwrite:  # the scores of what was discarded must not outlive it, should this run be cut short
            for name in (METRICS_FILE, REPORT_FILE):
                (Path(out) / name).unlink(missing_ok=True)
    predictions = predict(
        modules,
        inputs,
        k=min(TOP_K, len(scored) if scored is not None else reference.num_classes),
        scored=scored,
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
        good = predictions["top_index"][0][:, 0] >= 0
        matrix = confusion(targets[good], predictions["top_index"][0][good, 0], space)
        # allow_nan=False: NaN is not JSON; a number that is not finite is a bug here, not a value to write.
        write_text(Path(out) / METRICS_FILE, json.dumps(metrics, indent=1, allow_nan=False) + "\n")
        write_report(Path(out) / REPORT_FILE, metrics, matrix)
    return metrics


def _resolved_layout(
    images: LabelledImages, layout: str | None, space: ClassSpace, *, note: Callable[[str], None] | None
) -> LabelledImages:
    """``images`` read as ImageNet-V2's when asked for, or found: numbered folders are ImageNet-V2's when the
    weights have ImageNet's classes (a fine-tuned module's classes may be numbers)."""
    wanted_v2 = layout == IMAGENET_V2 or (layout is None and space.imagenet and is_imagenet_v2(images))
    if wanted_v2:
        if not space.imagenet:
            raise OptionError(
                f"layout {IMAGENET_V2}: its folders are ImageNet's classes by number, and these weights have "
                f"{len(space)} classes of their own"
            )
        if layout is None and note is not None:
            note(
                f"{images.data}: read as ImageNet-V2 (class folders 0 to 999, folder i the i-th synset in sorted "
                "order); --layout folders reads the folder names as class names"
            )
        return as_imagenet_v2(images, imagenet_synsets(1000))
    return images


def _scored_outputs(
    images: LabelledImages, space: ClassSpace, *, note: Callable[[str], None] | None
) -> np.ndarray | None:
    """The outputs to score over: for class folders that are a proper subset of ImageNet's 1000 synsets (as
    ImageNet-A and ImageNet-R are distributed), their classes' outputs alone, as those sets' protocol scores
    them; None (every output) otherwise."""
    if images.layout != "folders" or not space.imagenet or not images.classes:
        return None
    if len(images.classes) >= len(imagenet_synsets(1000)):
        return None
    if note is not None:
        note(
            f"{images.data}: {len(images.classes)} of ImageNet's 1000 classes, scored over their own "
            f"{len(images.classes)} outputs (the ImageNet-A/-R protocol); top1_all_classes in metrics.json "
            "scores over every output"
        )
    return space.outputs(images.classes)


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
