"""Which class an explanation is about: a class index, a label looked up in ``module.labels``, or one per image.

Errors are :class:`~irv2.errors.OptionError`, their message starting with the argument's name (``target``,
``k``, ``module``), so the command line can put its flag name in front and report a usage error.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
import torch

from ..api import Module
from ..errors import OptionError

# One class for every image: its index, or its label as ``module.labels`` spells it.
ClassRef = int | str
# What ``target=`` takes: None (each image's top class), one class for all, or one class per image.
Target = ClassRef | Sequence[ClassRef] | np.ndarray | torch.Tensor | None


def require_classifier(module: Module) -> None:
    """OptionError for a feature-vector module: there is no class score whose gradient could explain it."""
    if not module.num_classes:
        raise OptionError(
            "module: a feature-vector module has no classifier to explain; load the classification module "
            "(e.g. google/imagenet/inception_resnet_v2/classification) or a fine-tuned one"
        )


def check_top(module: Module, k: int) -> None:
    """OptionError unless ``k`` is a number of classes the module has (1 to ``num_classes``)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= module.num_classes:
        raise OptionError(f"k must be a whole number from 1 to {module.num_classes} (the module's classes), got {k!r}")


def class_index(module: Module, target: ClassRef) -> int:
    """The class index ``target`` names: an index (checked against ``num_classes``) or a label."""
    if isinstance(target, (bool, np.bool_)):
        raise OptionError(f"target {target!r}: expected a class index or a label, not a boolean")
    if isinstance(target, (int, np.integer)):
        index = int(target)
        if not 0 <= index < module.num_classes:
            raise OptionError(
                f"target {index}: out of range; this module has {module.num_classes} classes "
                f"(0 to {module.num_classes - 1})"
            )
        return index
    if isinstance(target, str):
        return _index_of_label(module, target)
    raise OptionError(f"target: expected a class index or a label, got a {type(target).__name__}")


def class_indices(module: Module, target: Target) -> int | list[int] | None:
    """The class index (or one per image) ``target`` names, checked against the module before any image is
    run; None stays None (each image's top class, known only once the logits are)."""
    if target is None:
        return None
    if isinstance(target, (np.ndarray, torch.Tensor)):
        target = target.tolist()  # a 0-d array becomes a scalar, anything else a list
    if isinstance(target, (str, int, np.integer)):
        return class_index(module, target)
    if not isinstance(target, Sequence):
        raise OptionError(
            f"target: expected a class index, a label or a sequence of one per image, got a {type(target).__name__}"
        )
    return [class_index(module, item) for item in target]


def per_image(indices: int | list[int] | None, batch_size: int) -> list[int] | None:
    """:func:`class_indices`' answer as one index per image of a batch of ``batch_size``."""
    if indices is None:
        return None
    if not isinstance(indices, list):
        return [indices] * batch_size
    if len(indices) != batch_size:
        raise OptionError(f"target: {len(indices)} targets for {batch_size} images; pass one per image, or one for all")
    return indices


def _index_of_label(module: Module, label: str) -> int:
    labels = module.labels
    if not labels:
        raise OptionError(
            f"target {label!r}: this module has no labels; pass a class index (0 to {module.num_classes - 1})"
        )
    matches = [i for i, name in enumerate(labels) if name == label]
    if not matches:  # "Tabby" finds "tabby": case is never what tells two ImageNet classes apart
        matches = [i for i, name in enumerate(labels) if name.lower() == label.lower()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        # ImageNet has such names: "crane" is a bird and a machine, "maillot" a swimsuit and a leotard.
        indices = ", ".join(map(str, matches))
        raise OptionError(f"target {label!r}: names {len(matches)} classes ({indices}); pass one of these indices")
    by_lower = {name.lower(): name for name in labels}
    close = [by_lower[name] for name in difflib.get_close_matches(label.lower(), list(by_lower), n=5)]
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else f" among the module's {len(labels)} labels"
    raise OptionError(f"target {label!r}: no such label{hint}")
