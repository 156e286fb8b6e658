"""Which parts of the network train in each mode, in which BatchNorm state, at which learning rate.

**What a "block" is** (``--mode last-blocks --blocks N``): the backbone is read as 49 units in network
order, each unit being one module that holds weights:

    ===  ===================================================  ==========================
     #   units                                                 count
    ===  ===================================================  ==========================
     1   stem convolutions conv2d_1a, 2a, 2b, 3b, 4a            5 (the max pools hold none)
     6   mixed_5b                                               1
     7   repeat.0 … repeat.9 (Block35, 35 x 35)                10
    17   mixed_6a                                               1
    18   repeat_1.0 … repeat_1.19 (Block17, 17 x 17)           20
    38   mixed_7a                                               1
    39   repeat_2.0 … repeat_2.8 (Block8, 8 x 8)                9
    48   block8 (the last Block8, no ReLU)                      1
    49   conv2d_7b (1x1 to 1536 channels)                       1
    ===  ===================================================  ==========================

``--blocks N`` trains the last N units plus the new head: 1 is conv2d_7b alone, 2 adds block8, 11 adds
all of repeat_2 (every 8 x 8 unit), 12 adds mixed_7a, 32 reaches back through all of repeat_1, 49 is
the whole backbone. Frozen units keep their weights and run in inference mode (BatchNorm on its moving
averages); trained units run as TF-Hub's train graph does (BatchNorm on batch statistics, moving
averages updated with ``batch_norm_momentum`` as TF's decay). BatchNorm's gamma stays fixed at one
everywhere: TF-Slim's batch norm has no scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..model import STAGES, InceptionResNetV2
from .heads import head_parameter

NUM_UNITS = 49


def backbone_units(model: InceptionResNetV2) -> list[tuple[str, nn.Module]]:
    """The 49 weight-holding units of the backbone, in network order, with their state-dict prefixes."""
    units: list[tuple[str, nn.Module]] = []
    for _, attr in STAGES:
        layer = getattr(model, attr)
        if isinstance(layer, nn.Sequential):
            units += [(f"{attr}.{i}", block) for i, block in enumerate(layer)]
        elif any(True for _ in layer.parameters()):
            units.append((attr, layer))
    return units


@dataclass
class TrainPlan:
    """What trains: the prefixes of the trained backbone units, and the frozen units to keep in eval mode."""

    trained_units: list[str]
    frozen: list[nn.Module] = field(default_factory=list)

    def set_training(self, model: nn.Module, training: bool = True) -> None:
        """``model.train(training)``, then frozen units back to inference mode."""
        model.train(training)
        if training:
            for unit in self.frozen:
                unit.eval()


def plan_training(model: InceptionResNetV2, mode: str, blocks: int | None = None) -> TrainPlan:
    """Freeze what ``mode`` leaves alone and return the plan (``full`` or ``last-blocks``).

    Expects the model already in train-graph state (``irv2.api.load.set_train_mode``): every weight
    trainable except BatchNorm's gamma.
    """
    units = backbone_units(model)
    if len(units) != NUM_UNITS:
        raise AssertionError(f"expected {NUM_UNITS} backbone units, found {len(units)}")
    if mode == "full":
        keep = len(units)
    elif mode == "last-blocks":
        if blocks is None or not 1 <= blocks <= NUM_UNITS:
            raise ValueError(f"blocks must be between 1 and {NUM_UNITS}, got {blocks}")
        keep = blocks
    else:
        raise ValueError(f"plan_training handles 'full' and 'last-blocks', not {mode!r}")
    frozen = units[: len(units) - keep]
    for _, unit in frozen:
        unit.requires_grad_(False)
    return TrainPlan([name for name, _ in units[len(units) - keep :]], [unit for _, unit in frozen])


def parameter_groups(
    model: nn.Module,
    *,
    lr: float,
    backbone_lr_factor: float,
    weight_decay: float,
    is_head: Callable[[str], bool] = head_parameter,
) -> list[dict[str, Any]]:
    """Optimizer groups of the trainable parameters: heads at ``lr``, backbone at ``lr * backbone_lr_factor``;
    weight decay on weight matrices and kernels only (biases and BatchNorm betas are not shrunk).

    ``is_head`` tells head parameters by name (linear mode's model is all head)."""
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        part = "head" if is_head(name) else "backbone"
        groups.setdefault((part, parameter.ndim > 1), []).append(parameter)
    out = []
    for (part, decay), params in sorted(groups.items(), key=lambda kv: (kv[0][0] != "head", not kv[0][1])):
        out.append(
            {
                "name": f"{part}{'' if decay else '_no_decay'}",
                "params": params,
                "lr": lr if part == "head" else lr * backbone_lr_factor,
                "weight_decay": weight_decay if decay else 0.0,
            }
        )
    return out
