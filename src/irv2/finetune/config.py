"""``FinetuneConfig``: every fine-tuning option, its default, and what values it accepts.

The same record drives ``irv2.finetune(...)``, ``irv2 finetune`` and the resumable checkpoint, so the
three can never disagree about a default. Options are validated when the record is built (``ValueError``
naming the option), before any image is read or any weight is loaded.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

MODES = ("linear", "full", "last-blocks")
OPTIMIZERS = ("adamw", "sgd", "rmsprop")
PRECISIONS = ("auto", "fp32", "bf16")

# Epochs on cached features cost milliseconds, so linear mode can afford many more than the modes that
# run the network on every image of every epoch.
DEFAULT_EPOCHS = {"linear": 30, "full": 10, "last-blocks": 10}


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
        batch_size: images per step and process (under torchrun the global batch is this times the
            number of processes).
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
        accumulate: optimizer step every this many batches (gradient accumulation).
        precision: ``auto`` (bf16 autocast where the hardware has native bf16, else fp32), ``fp32``, ``bf16``.
        patience: stop after this many epochs without a lower validation loss; None trains every epoch.
        seed: seeds the split, the shuffling, the augmentation and dropout.
        dropout_rate: dropout before the classifier while training (TF-Slim's keep_prob 0.8).
        batch_norm_momentum: BatchNorm's moving-average decay as TensorFlow states it (TF-Hub's
            ``batch_norm_momentum``); PyTorch's momentum is ``1 - decay``.
        aux_loss_weight: weight of the AuxLogits loss in ``full`` mode at 299 px (TF-Slim's 0.4).
        sync_bn: SyncBatchNorm across processes under torchrun (GPUs only).
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
    precision: str = "auto"
    patience: int | None = None
    seed: int = 0
    dropout_rate: float = 0.2
    batch_norm_momentum: float = 0.997
    aux_loss_weight: float = 0.4
    sync_bn: bool = False
    workers: int = 0
    device: str | None = None
    resume: bool = False
    overwrite: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.epochs is None and self.mode in DEFAULT_EPOCHS:
            self.epochs = DEFAULT_EPOCHS[self.mode]
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first option with a value irv2 cannot use."""
        _choice("mode", self.mode, MODES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("precision", self.precision, PRECISIONS)
        if self.mode == "last-blocks":
            if self.blocks is None or not 1 <= self.blocks <= 49:
                raise ValueError(f"blocks must be between 1 and 49 with mode 'last-blocks', got {self.blocks}")
        elif self.blocks is not None:
            raise ValueError(f"blocks applies to mode 'last-blocks' only (mode is {self.mode!r})")
        for name in ("epochs", "batch_size", "accumulate"):
            _at_least(name, getattr(self, name), 1)
        _at_least("image_size", self.image_size, 75)
        _at_least("workers", self.workers, 0)
        if self.patience is not None:
            _at_least("patience", self.patience, 1)
        for name in ("lr", "backbone_lr_factor"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")
        for name in ("weight_decay", "warmup_epochs", "aux_loss_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be zero or positive, got {value}")
        _in_range("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        _in_range("val_fraction", self.val_fraction, 0.0, 1.0, low_open=True, high_open=True)
        _in_range("dropout_rate", self.dropout_rate, 0.0, 1.0, high_open=True)
        _in_range("batch_norm_momentum", self.batch_norm_momentum, 0.0, 1.0, low_open=True, high_open=True)

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON values (for metrics.json and the checkpoint)."""
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _at_least(name: str, value: object, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")


def _in_range(name: str, value: float, low: float, high: float, *, low_open=False, high_open=False) -> None:
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (isinstance(value, (int, float)) and above and below):
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right}, got {value!r}")
