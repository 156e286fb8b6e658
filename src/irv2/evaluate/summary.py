"""``metrics.json``: the scores of every configuration, gathered from the predictions and the labels.

The top level holds the first configuration's scores (``top1``, ``top5``, ``top1_all_classes``,
``top5_all_classes``, ``images``, ``errors``, ``per_class``, ``ece`` and ``reliability``, ``worst_classes``),
the images not scored (``error_files``: unreadable, or outputs that are not finite), how long the whole pass
took, and what was evaluated on what (``data``, ``layout``, ``set``, ``labels``, ``weights``, ``machine``,
``versions``), with the figures published for the weights (``published``). ``runs`` has one entry per
configuration, the first included, each with its own scores, its network time and its ``agreement`` with the
first.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np

from .._version import __version__
from ..api import Module
from ..clock import utc_now
from ..engine.catalog import ENGINES
from ..hub.registry import published_accuracy
from .classes import ClassSpace
from .configurations import configuration_name
from .datasets import identify_set
from .labelled import LabelledImages
from .metrics import accuracy_of, agreement, hits, per_class, worst_classes


def summarise(
    images: LabelledImages,
    targets: np.ndarray,
    space: ClassSpace,
    modules: Sequence[Module],
    predictions: dict[str, np.ndarray],
    *,
    weights: str,
    skipped: Sequence[dict[str, Any]] = (),
    worst: int = 10,
) -> dict[str, Any]:
    """The content of ``metrics.json`` (see the module docstring); ``predictions`` as
    :func:`irv2.evaluate.runner.predict` returns them, ``targets`` each image's output indices (-1 padded)."""
    errors = predictions["errors"]
    top_index, top_prob, kl = predictions["top_index"], predictions["top_prob"], predictions["kl"]
    top_all = predictions.get("top_index_all")
    # An image is scored by a configuration that read it and gave finite outputs for it (top_index -1 else).
    scored = top_index[:, :, 0] >= 0
    runs = []
    for c, module in enumerate(modules):
        valid = scored[c]
        scores = accuracy_of(top_index[c], top_prob[c], targets, valid)
        if top_all is not None:
            top1_all, top5_all = hits(top_all[c][valid], targets[valid])
            scores["top1_all_classes"] = float(top1_all.mean()) if valid.any() else None
            scores["top5_all_classes"] = float(top5_all.mean()) if valid.any() else None
        seconds = float(predictions["network_seconds"][c])
        both = scored[0] & valid
        runs.append(
            {
                "name": configuration_name(module),
                "engine": module.engine_name,
                "dtype": module.precision,
                **scores,
                "errors": int((~valid).sum()),
                "network_seconds": seconds,
                "network_images_per_second": scores["images"] / seconds if seconds > 0 else None,
                "agreement": agreement(top_index[0][both, 0], top_index[c][both, 0], kl[c][both]),
            }
        )
    paths = [str(p) for p in predictions["paths"]]
    good = scored[0]
    scored_paths = [p for p, ok in zip(paths, good, strict=True) if ok]
    classes = per_class(targets[good], top_index[0][good], space)
    wall = float(predictions["wall_seconds"])
    first = runs[0]
    subset = top_all is not None
    return {
        "top1": first["top1"],
        "top5": first["top5"],
        "top1_all_classes": first["top1_all_classes"] if subset else first["top1"],
        "top5_all_classes": first["top5_all_classes"] if subset else first["top5"],
        "scored_classes": len(images.classes) if subset and images.classes else len(space),
        "images": first["images"],
        "errors": first["errors"],
        "error_files": _error_files(paths, errors, scored, modules),
        "images_without_labels": images.without_labels,
        "ece": first["ece"],
        "reliability": first["reliability"],
        "per_class": classes,
        "worst_classes": worst_classes(classes, targets[good], top_index[0][good], scored_paths, space, count=worst),
        "runs": runs,
        "skipped": list(skipped),
        "inputs": len(paths),
        "seconds": wall,
        "images_per_second": len(paths) / wall if wall > 0 else None,
        "classes": len(space),
        "top_k": int(top_index.shape[2]),
        "data": images.data,
        "layout": images.layout,
        "set": identify_set(images),
        "labels": images.label_file,
        "synsets": images.synset_map,
        "weights": weights,
        "published": published_figures(modules[0]),
        "created": utc_now(),
        "machine": _machine(modules[0]),
        "versions": _versions(modules),
    }


def _error_files(
    paths: list[str], errors: np.ndarray, scored: np.ndarray, modules: Sequence[Module]
) -> list[dict[str, str]]:
    """Each image that was not scored, and why: unreadable, or outputs that are not finite in a configuration
    (float16 overflow gives infinity, and NaN after it)."""
    rows = []
    for i, (path, error) in enumerate(zip(paths, errors, strict=True)):
        if error:
            rows.append({"path": path, "error": str(error)})
            continue
        failed = [configuration_name(m) for c, m in enumerate(modules) if not scored[c, i]]
        if failed:
            rows.append({"path": path, "error": f"outputs not finite (NaN or infinity) on {', '.join(failed)}"})
    return rows


def published_figures(module: Module) -> dict[str, Any] | None:
    """The accuracies published for these weights (:func:`irv2.hub.registry.published_accuracy`) when they are
    a release irv2's registry knows, as loaded: ``weights`` (the record's name) and ``publications``. None for
    other weights, fine-tuned ones included."""
    provenance = module.info.provenance
    name = provenance.get("source")
    if not isinstance(name, str) or "finetuned_from" in provenance or module.num_classes not in (1000, 1001):
        return None
    publications = published_accuracy(name)
    return {"weights": name, "publications": publications} if publications else None


def _machine(module: Module) -> dict[str, Any]:
    from ..bench.runner import machine_info  # the processor, cores, threads and instruction sets irv2 bench records

    return machine_info(module.device)


def _versions(modules: Sequence[Module]) -> dict[str, str]:
    versions = {"irv2": __version__, "python": platform.python_version()}
    wanted = ["torch", "numpy", "pillow"]
    # The library that runs a configuration's engine files, where one does (ONNX Runtime, OpenVINO).
    wanted += [library for m in modules if (library := ENGINES[m.engine_name].library) is not None]
    for name in dict.fromkeys(wanted):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
