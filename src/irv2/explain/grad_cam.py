"""Grad-CAM (Selvaraju et al. 2017) of the last convolutional map, ``Conv2d_7b_1x1``.

For class ``c`` and the activations ``A`` ``[h, w, 1536]`` (8 x 8 at 299 px): the weight of channel ``k`` is
the spatial mean of d logit_c / d A_k, and the map is ReLU(sum_k weight_k A_k), divided by its maximum.

The backbone runs once on the fast fused engine, without autograd; only the head (global mean, then
``module.model.classif``) is differentiated. With TF-Hub's head, a mean then one dense layer, this is CAM
(Zhou et al. 2016), ReLU(A . W[:, c]), up to a positive factor; a fine-tuned head of any shape is
differentiated as it is. Explanations are of the inference graph: the network is in eval mode meanwhile
(no dropout, BatchNorm on its moving statistics), and back in its own mode afterwards.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..api import Module
from .targets import Target, check_top, class_indices, per_image, require_classifier

LAYER = "Conv2d_7b_1x1"


@dataclass(frozen=True)
class Explanation:
    """Grad-CAM of a batch for one class per image.

    Attributes:
        maps: ``[B, h, w]`` float32 in [0, 1] (8 x 8 at 299 px), each divided by its maximum; a map with no
            positive evidence stays all zero. Numpy for numpy images, a tensor (on the module's device) for
            tensor images.
        targets: the class index each map explains.
        labels: the label of each target (None when the module has no labels).
        scores: the softmax probability of each target.
    """

    maps: np.ndarray | torch.Tensor
    targets: list[int]
    labels: list[str | None]
    scores: list[float]


def gradcam(module: Module, images: np.ndarray | torch.Tensor, target: Target = None) -> Explanation:
    """Grad-CAM of ``Conv2d_7b_1x1`` for ``images`` ``[B, H, W, 3]`` float in [0, 1], at the module's
    expected size (299 x 299 for the TF-Hub weights).

    Args:
        target: None for each image's top class; a class index or a label of ``module.labels`` for every
            image (a label naming several classes, as ImageNet's "crane", must be given by index); or a
            sequence of those, one per image.

    Raises:
        OptionError: a feature-vector module (no classifier), or a target the module does not have.
    """
    return _explain(module, images, target, ranks=1)[0]


def gradcam_top_k(module: Module, images: np.ndarray | torch.Tensor, k: int) -> list[Explanation]:
    """Grad-CAM of each image's ``k`` most probable classes: one :class:`Explanation` per rank, best first.
    The backbone runs once for all ranks."""
    require_classifier(module)
    check_top(module, k)
    return _explain(module, images, None, ranks=k)


def explain(module: Module, images: np.ndarray | torch.Tensor, target: Target = None) -> np.ndarray | torch.Tensor:
    """The Grad-CAM maps alone: ``[B, 8, 8]`` at 299 px, float32 in [0, 1]; see :func:`gradcam`.

    >>> module = irv2.load()
    >>> maps = irv2.explain(module, module.preprocess(irv2.sample_image())[None])   # [1, 8, 8]
    """
    return gradcam(module, images, target).maps


def _explain(module: Module, images: Any, target: Target, ranks: int) -> list[Explanation]:
    require_classifier(module)
    indices = class_indices(module, target)  # a wrong class fails before the network runs
    with _eval_mode(module.model):
        activations, as_numpy = _activations(module, images)
        targets = per_image(indices, activations.shape[0])
        head = _float32_head(module.model.classif)
        # Autograd on the head only, also when the caller is inside torch.inference_mode or no_grad.
        with torch.inference_mode(False), torch.enable_grad():
            conv = activations.clone().to(_device_of(head, module)).requires_grad_()
            logits = head(conv.mean(dim=(1, 2)))
            probabilities = torch.softmax(logits.detach(), dim=1)
            if targets is None:
                ranked = probabilities.topk(ranks, dim=1).indices
            else:
                ranked = torch.tensor(targets, device=logits.device)[:, None]
            explanations = []
            for rank in range(ranks):
                chosen = ranked[:, rank]
                # Images are independent through the head (eval mode), so one backward pass of the sum
                # gives each image the gradient of its own class score.
                score = logits.gather(1, chosen[:, None]).sum()
                (gradient,) = torch.autograd.grad(score, conv, retain_graph=rank < ranks - 1)
                channel_weights = gradient.mean(dim=(1, 2))  # [B, C]
                cam = torch.relu(torch.einsum("bhwc,bc->bhw", conv.detach(), channel_weights))
                explanations.append(_explanation(module, _normalised(cam), chosen, probabilities, as_numpy))
    return explanations


def _activations(module: Module, images: Any) -> tuple[torch.Tensor, bool]:
    """``Conv2d_7b_1x1`` ``[B, h, w, 1536]`` float32, and whether the images were numpy (then so are the maps).
    It may be an inference tensor, which autograd refuses: the caller clones it outside inference mode."""
    with torch.inference_mode():
        found = module.endpoints(images, [LAYER])
    value = next(iter(found.values()))
    if isinstance(value, torch.Tensor):
        return value.float(), False
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)), True


def _normalised(cam: torch.Tensor) -> torch.Tensor:
    """Each map divided by its maximum; an all-zero map (no positive evidence) stays zero, not NaN."""
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak.clamp_min(torch.finfo(cam.dtype).tiny), torch.zeros_like(cam))


def _explanation(
    module: Module, maps: torch.Tensor, chosen: torch.Tensor, probabilities: torch.Tensor, as_numpy: bool
) -> Explanation:
    targets = [int(i) for i in chosen.tolist()]
    scores = probabilities.gather(1, chosen[:, None])[:, 0].tolist()
    labels = [module.labels[i] if module.labels else None for i in targets]
    maps = maps.detach().float()
    return Explanation(maps.cpu().numpy() if as_numpy else maps, targets, labels, [float(s) for s in scores])


def _float32_head(head: nn.Module) -> nn.Module:
    """The classifier in float32: a low-precision head (bfloat16, float16) is copied and widened, so that the
    gradient is exact and the module's own head is left as it is."""
    if all(p.dtype == torch.float32 for p in head.parameters()):
        return head
    return copy.deepcopy(head).float()


def _device_of(head: nn.Module, module: Module) -> torch.device:
    parameter = next(head.parameters(), None)
    return parameter.device if parameter is not None else module.device


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """``model`` (and so its classifier) in eval mode for the block, then every submodule back in its own mode:
    a module loaded with ``tags={"train"}`` keeps training afterwards."""
    modes = [(layer, layer.training) for layer in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for layer, training in modes:
            layer.training = training
