"""``metrics.json``: the scores of every configuration, gathered from the predictions and the labels.

The top level holds the first configuration's scores (``top1``, ``top5``, ``images``, ``errors``, ``per_class``,
``ece`` and ``reliability``, ``worst_classes``), the unreadable files (``error_files``), how long the whole
pass took, and what was evaluated on what (``data``, ``layout``, ``labels``, ``weights``, ``machine``,
``versions``). ``runs`` has one entry per configuration, the first included, each with its own scores, its
network time and its ``agreement`` with the first.
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
from .classes import ClassSpace
from .configurations import configuration_name
from .layouts import LabelledImages
from .metrics import accuracy_of, agreement, per_class, worst_classes


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
    :func:`irv2.evaluate.runner.predict` returns them, ``targets`` each image's output index."""
    errors = predictions["errors"]
    good = errors == ""
    top_index, top_prob, kl = predictions["top_index"], predictions["top_prob"], predictions["kl"]
    reference_top1 = top_index[0][good, 0]
    runs = []
    for c, module in enumerate(modules):
        scores = accuracy_of(top_index[c], top_prob[c], targets, good)
        seconds = float(predictions["network_seconds"][c])
        runs.append(
            {
                "name": configuration_name(module),
                "engine": module.engine_name,
                "dtype": module.precision,
                **scores,
                "errors": int((~good).sum()),
                "network_seconds": seconds,
                "network_images_per_second": scores["images"] / seconds if seconds > 0 else None,
                "agreement": agreement(reference_top1, top_index[c][good, 0], kl[c][good]),
            }
        )
    paths = [str(p) for p in predictions["paths"]]
    scored = [p for p, ok in zip(paths, good, strict=True) if ok]
    classes = per_class(targets[good], top_index[0][good], space)
    wall = float(predictions["wall_seconds"])
    first = runs[0]
    return {
        "top1": first["top1"],
        "top5": first["top5"],
        "images": first["images"],
        "errors": first["errors"],
        "error_files": [{"path": p, "error": str(e)} for p, e in zip(paths, errors, strict=True) if e],
        "ece": first["ece"],
        "reliability": first["reliability"],
        "per_class": classes,
        "worst_classes": worst_classes(classes, targets[good], top_index[0][good], scored, space, count=worst),
        "runs": runs,
        "skipped": list(skipped),
        "inputs": len(paths),
        "seconds": wall,
        "images_per_second": len(paths) / wall if wall > 0 else None,
        "classes": len(space),
        "top_k": int(top_index.shape[2]),
        "data": images.data,
        "layout": images.layout,
        "labels": images.label_file,
        "synsets": images.synset_map,
        "weights": weights,
        "created": utc_now(),
        "machine": _machine(modules[0]),
        "versions": _versions(modules),
    }


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
