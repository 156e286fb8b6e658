"""``FinetuneConfig``: every fine-tuning option, its default, and what values it accepts.

The same record drives ``irv2.finetune(...)``, ``irv2 finetune`` and the resumable checkpoint, so the
three can never disagree about a default. Options are validated when the record is built (an
:class:`OptionError`, a ``ValueError`` naming the option), before any image is read or any weight is loaded.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..engine.precision import dtype_name
from ..errors import OptionError

MODES = ("linear", "full", "last-blocks")
OPTIMIZERS = ("adamw", "sgd", "rmsprop")
# irv2's precision names (``irv2.engine.PRECISIONS``) that training can use, plus ``auto``.
DTYPES = ("auto", "float32", "bfloat16")

# Epochs on cached features cost milliseconds, so linear mode can afford many more than the modes that
# run the network on every image of every epoch.
DEFAULT_EPOCHS = {"linear": 30, "full": 10, "last-blocks": 10}


# The options that decide what a run computes: ``--resume`` refuses a change to any of them, since the resumed
# epochs would train another model than the checkpoint's. ``epochs`` (a run may be extended) and ``patience``
# (when to stop) may change, as may where and how it runs (device, workers, quiet).
RUN_DEFINING = (
    "weights",
    "mode",
    "blocks",
    "batch_size",
    "image_size",
    "lr",
    "backbone_lr_factor",
    "weight_decay",
    "optimizer",
    "warmup_epochs",
    "label_smoothing",
    "color_jitter",
    "val",
    "val_fraction",
    "accumulate",
    "dtype",
    "seed",
    "dropout_rate",
    "batch_norm_momentum",
    "aux_loss_weight",
)


def option_flag(field: str) -> str:
    """The command-line option of a :class:`FinetuneConfig` field: ``image_size`` → ``--image-size``."""
    return "--" + field.replace("_", "-")


def canonical_dtype(name: str) -> str:
    """A ``dtype`` spelling in irv2's vocabulary (``fp32`` → ``float32``, ``bf16`` → ``bfloat16``: the
    engine's aliases, which include fine-tuning's old names); ``auto`` and unknown names as they are."""
    try:
        return dtype_name(name)
    except ValueError:
        return str(name).lower()


@dataclass
class FinetuneConfig:
    """Options of a fine-tuning run (see docs/finetune.md for the full story).

    Attributes:
        weights: what to start from, any handle ``irv2.load`` takes; None for irv2's default weights.
        mode: ``linear`` (frozen backbone, features cached, new head only), ``full`` (every layer; the
            backbone at ``lr * backbone_lr_factor``) or ``last-blocks`` (the last ``blocks`` units of the
            backbone plus the head; see ``irv2.finetune.freeze`` for what a unit is).
        blocks: with ``last-blocks``, how many backbone units train (1 to 49); refused with other modes.
        epochs: passes over the training set; None picks 30 for ``linear`` and 10 for the other modes.
        batch_size: the global batch: images per optimizer step (before ``accumulate``), summed over all
            torchrun processes, each of which takes its share of every batch (see ``batches.py``). The
            same options give the same run with any number of processes; at least one image per process.
        image_size: side of the square training and evaluation images (75 or more; 299 is native).
        lr: peak learning rate of the new head (AdamW's default suits 1e-3).
        backbone_lr_factor: the backbone's learning rate relative to ``lr`` (``full``, ``last-blocks``).
        weight_decay: on weights (not biases or BatchNorm betas); decoupled for AdamW, L2 otherwise.
        optimizer: ``adamw``, ``sgd`` (momentum 0.9, Nesterov off) or ``rmsprop`` (TF-Slim's: decay 0.9,
            momentum 0.9, epsilon 1.0).
        warmup_epochs: linear warm-up from 0 to ``lr``, then cosine decay to 0, both per optimizer step.
        label_smoothing: cross-entropy label smoothing (TF-Slim's ImageNet training used 0.1).
        color_jitter: TF-Slim's fast colour distortion (brightness and saturation) on training images.
        val: a separate validation set (folder or CSV) instead of a split of ``data``.
        val_fraction: share of each class held out for validation when ``val`` is None.
        accumulate: optimizer step every this many global batches (gradient accumulation); the step follows
            the mean loss over all their images.
        dtype: ``auto`` (bfloat16 autocast where the GPU or CPU computes it natively, else float32),
            ``float32`` or ``bfloat16`` (``fp32`` and ``bf16`` are accepted and stored as these).
        patience: stop after this many epochs without a lower validation loss; None trains every epoch.
        seed: seeds the split, the new heads, the order of the images, the augmentation and dropout (the
            last two per image and epoch, whatever process holds the image).
        dropout_rate: dropout before the classifier while training (TF-Slim's keep_prob 0.8).
        batch_norm_momentum: BatchNorm's moving-average decay as TensorFlow states it (TF-Hub's
            ``batch_norm_momentum``); PyTorch's momentum is ``1 - decay``.
        aux_loss_weight: weight of the AuxLogits loss in ``full`` mode at 299 px (TF-Slim's 0.4).
        workers: DataLoader worker processes for decoding and augmenting images (0: in the main process).
        device: torch device; None picks CUDA (the local rank's GPU under torchrun) when present, else CPU.
        resume: continue from ``OUT/checkpoint.pt`` if there is one.
        overwrite: allow an output folder that already holds a run (without ``resume``).
        quiet: no progress bars or notes on stderr.
    """

    weights: str | None = None
    mode: str = "linear"
    blocks: int | None = None
    epochs: int | None = None
    batch_size: int = 32
    image_size: int = 299
    lr: float = 1e-3
    backbone_lr_factor: float = 0.1
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    color_jitter: bool = False
    val: str | None = None
    val_fraction: float = 0.2
    accumulate: int = 1
    dtype: str = "auto"
    patience: int | None = None
    seed: int = 0
    dropout_rate: float = 0.2
    batch_norm_momentum: float = 0.997
    aux_loss_weight: float = 0.4
    workers: int = 0
    device: str | None = None
    resume: bool = False
    overwrite: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.epochs is None and self.mode in DEFAULT_EPOCHS:
            self.epochs = DEFAULT_EPOCHS[self.mode]
        self.dtype = canonical_dtype(self.dtype)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`OptionError` naming the first option with a value irv2 cannot use."""
        _choice("mode", self.mode, MODES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("dtype", self.dtype, DTYPES)
        if self.mode == "last-blocks":
            if self.blocks is None or not 1 <= self.blocks <= 49:
                raise OptionError(f"blocks must be between 1 and 49 with mode 'last-blocks', got {self.blocks}")
        elif self.blocks is not None:
            raise OptionError(f"blocks applies to mode 'last-blocks' only (mode is {self.mode!r})")
        for name in ("epochs", "batch_size", "accumulate"):
            _at_least(name, getattr(self, name), 1)
        _at_least("image_size", self.image_size, 75)
        _at_least("workers", self.workers, 0)
        if self.patience is not None:
            _at_least("patience", self.patience, 1)
        for name in ("lr", "backbone_lr_factor"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise OptionError(f"{name} must be a positive number, got {value}")
        for name in ("weight_decay", "warmup_epochs", "aux_loss_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise OptionError(f"{name} must be zero or positive, got {value}")
        _in_range("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        _in_range("val_fraction", self.val_fraction, 0.0, 1.0, low_open=True, high_open=True)
        _in_range("dropout_rate", self.dropout_rate, 0.0, 1.0, high_open=True)
        _in_range("batch_norm_momentum", self.batch_norm_momentum, 0.0, 1.0, low_open=True, high_open=True)

    def check_processes(self, world_size: int) -> None:
        """Raise :class:`OptionError` if ``world_size`` processes cannot share the global batch."""
        if self.batch_size < world_size:
            raise OptionError(
                f"batch_size must be at least the number of processes ({world_size}): it is the global batch, "
                f"shared by all processes; got {self.batch_size}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON values (for metrics.json and the checkpoint)."""
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise OptionError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _at_least(name: str, value: object, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise OptionError(f"{name} must be a whole number >= {low}, got {value!r}")


def _in_range(name: str, value: float, low: float, high: float, *, low_open=False, high_open=False) -> None:
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (isinstance(value, (int, float)) and above and below):
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise OptionError(f"{name} must be in {left}{low}, {high}{right}, got {value!r}")
