"""Optimizers (AdamW, SGD, TF-Slim's RMSProp) and the warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

SGD_MOMENTUM = 0.9
# TF-Slim's ImageNet training of Inception-ResNet-v2: RMSProp with these, and TF's semantics (below).
RMSPROP_DECAY, RMSPROP_MOMENTUM, RMSPROP_EPSILON = 0.9, 0.9, 1.0


class TFRMSprop(torch.optim.Optimizer):
    """RMSProp as TensorFlow 1 computes it (``tf.train.RMSPropOptimizer``, not centred)::

        ms  = decay * ms + (1 - decay) * g**2          # ms starts at 1, not 0
        mom = momentum * mom + lr * g / sqrt(ms + eps)
        w  -= mom

    PyTorch's ``RMSprop`` starts ``ms`` at 0 and adds ``eps`` outside the square root; with TF-Slim's
    epsilon of 1.0 the two differ a lot, so the TF form is spelt out here. ``weight_decay`` is an L2 term
    added to the gradient, as TF-Slim's ``l2_regularizer`` does.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        decay: float = RMSPROP_DECAY,
        momentum: float = RMSPROP_MOMENTUM,
        eps: float = RMSPROP_EPSILON,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(
            params, {"lr": lr, "decay": decay, "momentum": momentum, "eps": eps, "weight_decay": weight_decay}
        )

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if not group["weight_decay"] else p.grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["ms"] = torch.ones_like(p)
                    state["mom"] = torch.zeros_like(p)
                ms, mom = state["ms"], state["mom"]
                ms.mul_(group["decay"]).addcmul_(grad, grad, value=1.0 - group["decay"])
                mom.mul_(group["momentum"]).addcdiv_(grad, (ms + group["eps"]).sqrt_(), value=group["lr"])
                p.sub_(mom)
        return loss


def make_optimizer(name: str, groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
    """``adamw`` (decoupled weight decay), ``sgd`` (momentum 0.9) or ``rmsprop`` (TF-Slim's); per-group
    ``lr`` and ``weight_decay`` come from ``groups``."""
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=SGD_MOMENTUM)
    if name == "rmsprop":
        return TFRMSprop(groups, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")


def warmup_steps(warmup_epochs: float, steps_per_epoch: int, total_steps: int) -> int:
    """Warm-up length in optimizer steps; at most half the run, so that even a short run decays."""
    return min(round(warmup_epochs * steps_per_epoch), total_steps // 2)


def warmup_cosine(optimizer: torch.optim.Optimizer, *, warmup: int, total: int) -> LambdaLR:
    """Per-step schedule: linear warm-up to each group's ``lr`` over ``warmup`` steps (the first step
    already at ``1 / warmup``), then half a cosine down to 0 at step ``total``.

    The factor is a closure, which ``LambdaLR.state_dict`` does not store: a resumed run rebuilds it
    from its own ``total``, so resuming with more epochs stretches the cosine instead of restarting it.
    """

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
