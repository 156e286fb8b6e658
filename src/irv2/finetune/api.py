"""``irv2.finetune(data, out, ...)``: fine-tune Inception-ResNet-v2 on a folder or CSV of labelled images."""

from __future__ import annotations

import os
import warnings
from typing import Any

from ..api import Module
from ..errors import OptionError
from .config import FinetuneConfig, canonical_dtype


def finetune(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    weights: str | os.PathLike[str] | None = None,
    mode: str = "linear",
    blocks: int | None = None,
    epochs: int | None = None,
    batch_size: int = 32,
    image_size: int = 299,
    lr: float = 1e-3,
    backbone_lr_factor: float = 0.1,
    weight_decay: float = 1e-4,
    optimizer: str = "adamw",
    warmup_epochs: float = 1.0,
    label_smoothing: float = 0.1,
    color_jitter: bool = False,
    val: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
    accumulate: int = 1,
    dtype: str = "auto",
    patience: int | None = None,
    seed: int = 0,
    dropout_rate: float = 0.2,
    batch_norm_momentum: float = 0.997,
    aux_loss_weight: float = 0.4,
    workers: int = 0,
    device: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    **deprecated: Any,
) -> tuple[Module, list[dict[str, Any]]]:
    """Fine-tune Inception-ResNet-v2 on labelled images and save the result as an irv2 module in ``out``.

    Args:
        data: a folder with one subfolder of images per class, or a CSV of ``path,label`` rows (relative
            paths are relative to the CSV's folder). Classes are sorted by name.
        out: the output folder. It becomes an irv2 module folder (``irv2.json`` + ``model.safetensors``,
            loadable with ``irv2.load(out)`` and ``irv2 classify --weights out``) holding the epoch with the
            lowest validation loss, plus ``metrics.json``, ``training_curves.png``,
            ``confusion_matrix.png``, ``checkpoint.pt`` (for ``resume``) and, in linear mode, ``cache/``.
        weights, mode, blocks, epochs, ...: the options of :class:`FinetuneConfig`, which documents each
            one and its default (``epochs`` None: 30 in linear mode, 10 otherwise).

    Returns:
        ``(module, history)``: the saved module loaded back (eval mode, ``num_classes`` = the number of
        classes, ``labels`` = the class names), and one dict per epoch run in this and earlier
        (resumed) sessions: ``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``,
        ``val_accuracy``, ``lr``, ``seconds``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the same call trains with DistributedDataParallel, and the
    same options train the same model: ``batch_size`` is the global batch, shared by the processes. See
    docs/finetune.md.

    Deprecated keywords: ``precision`` (now ``dtype``; ``fp32`` and ``bf16`` still mean float32 and
    bfloat16) and ``sync_bn`` (ignored: BatchNorm always normalises over the global batch); each warns
    with a ``DeprecationWarning``.

    Raises:
        DatasetError: the data cannot be used (no or one class, an empty class, too few images to split).
        Irv2Error: weights that cannot be loaded, an output folder that holds another run, a checkpoint
            that does not match.
        ValueError: an option out of range (an ``OptionError`` naming it), also a global batch smaller
            than the number of processes.
        TypeError: an unknown keyword.
    """
    options = dict(locals())  # exactly the parameters above: nothing else is defined yet
    del options["data"], options["out"], options["deprecated"]
    _take_deprecated(deprecated, options)
    for key in ("weights", "val"):
        if options[key] is not None:
            options[key] = os.fspath(options[key])
    config = FinetuneConfig(**options)
    from .session import run

    return run(data, out, config)


def _take_deprecated(deprecated: dict[str, Any], options: dict[str, Any]) -> None:
    """Map the keywords of earlier versions onto ``options``, with a DeprecationWarning each."""
    for name, value in deprecated.items():
        if name == "precision":
            warnings.warn("irv2.finetune(precision=...) is deprecated; use dtype=", DeprecationWarning, stacklevel=3)
            if options["dtype"] not in ("auto", canonical_dtype(value)):
                raise OptionError(f"dtype {options['dtype']!r} and precision {value!r} disagree; pass dtype only")
            options["dtype"] = value
        elif name == "sync_bn":
            warnings.warn(
                "irv2.finetune(sync_bn=...) is deprecated and ignored: under torchrun BatchNorm always "
                "normalises over the global batch",
                DeprecationWarning,
                stacklevel=3,
            )
        else:
            raise TypeError(f"finetune() got an unexpected keyword argument {name!r}")
