"""Inception-ResNet-v2 exactly as TF-Slim's ``inception_resnet_v2`` builds it (Szegedy et al. 2016).

Input: float NCHW in [-1, 1] (TF-Slim's own range; the TF-Hub module's [0, 1] mapping lives in
``irv2.api``). Output: logits ``[N, num_classes]``; 1001 classes for the original weights, index 0 being
"background". Any input from 75 x 75 up works; the reference size is 299 x 299.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .blocks import AuxLogits, Block8, Block17, Block35, Mixed5b, Mixed6a, Mixed7a
from .layers import ConvBnAct, same
from .names import BASE_ENDPOINTS, MIN_INPUT_SIZE, NUM_FEATURES, STAGES

__all__ = ["BASE_ENDPOINTS", "MIN_INPUT_SIZE", "NUM_FEATURES", "STAGES", "InceptionResNetV2"]


class InceptionResNetV2(nn.Module):
    """TF-Slim Inception-ResNet-v2 with timm's state-dict names.

    Args:
        num_classes: width of the classifier; 1001 for the TF-Slim/TF-Hub weights, 1000 for Keras/timm
            ports, 0 for a features-only network (``forward`` then returns the 1536-d pooled features).
        aux_logits: build the auxiliary head (TF-Slim ``AuxLogits``); it is off the inference path and
            only computed by ``forward_with_aux``.
        drop_rate: dropout before the classifier in training; TF-Slim's keep_prob 0.8 is 0.2.
    """

    def __init__(self, num_classes: int = 1001, aux_logits: bool = True, drop_rate: float = 0.2) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = NUM_FEATURES

        # Stem. Three stride-1 convs are VALID (no padding) in TF-Slim; only Conv2d_2b is SAME.
        self.conv2d_1a = ConvBnAct(3, 32, 3, stride=2)  # 149 x 149 x 32
        self.conv2d_2a = ConvBnAct(32, 32, 3)  # 147 x 147 x 32
        self.conv2d_2b = ConvBnAct(32, 64, 3, padding=same(3))  # 147 x 147 x 64
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)  # 73 x 73 x 64
        self.conv2d_3b = ConvBnAct(64, 80, 1)  # 73 x 73 x 80
        self.conv2d_4a = ConvBnAct(80, 192, 3)  # 71 x 71 x 192
        self.maxpool_5a = nn.MaxPool2d(3, stride=2)  # 35 x 35 x 192

        self.mixed_5b = Mixed5b()  # 35 x 35 x 320
        self.repeat = nn.Sequential(*(Block35(scale=0.17) for _ in range(10)))
        self.mixed_6a = Mixed6a()  # 17 x 17 x 1088
        self.repeat_1 = nn.Sequential(*(Block17(scale=0.10) for _ in range(20)))
        self.mixed_7a = Mixed7a()  # 8 x 8 x 2080
        self.repeat_2 = nn.Sequential(*(Block8(scale=0.20) for _ in range(9)))
        # TF-Slim calls block8 once more with its default arguments: scale 1.0 and no ReLU.
        self.block8 = Block8(scale=1.0, no_relu=True)
        self.conv2d_7b = ConvBnAct(2080, NUM_FEATURES, 1)  # 8 x 8 x 1536

        self.head_drop = nn.Dropout(drop_rate)
        self.classif = nn.Linear(NUM_FEATURES, num_classes) if num_classes else nn.Identity()
        self.aux_logits = AuxLogits(num_classes) if aux_logits and num_classes else None

    def forward_endpoints(self, x: torch.Tensor, names: Iterable[str] = BASE_ENDPOINTS) -> dict[str, torch.Tensor]:
        """The outputs of the stages ``names`` (TF-Slim end points, or any name of ``STAGES``), NCHW, in network
        order; the network runs only as far as the last one asked for."""
        _check_input(x)
        wanted = set(names)
        unknown = wanted - {name for name, _ in STAGES}
        if unknown:
            raise ValueError(f"no such stage {sorted(unknown)}; the stages are {[name for name, _ in STAGES]}")
        points: dict[str, torch.Tensor] = {}
        for name, attr in STAGES:
            if len(points) == len(wanted):
                break
            x = getattr(self, attr)(x)
            if name in wanted:
                points[name] = x
        return points

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` in [-1, 1] → the ``Conv2d_7b_1x1`` map ``[N, 1536, h, w]`` (8 x 8 at 299 px)."""
        _check_input(x)
        for _, attr in STAGES:
            x = getattr(self, attr)(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool (the TF-Hub feature vector), dropout, then the classifier."""
        # A mean over H and W equals TF-Slim's 8x8 VALID pool at 299 px and its reduce_mean elsewhere.
        x = x.mean(dim=(2, 3))
        if pre_logits:
            return x
        return self.classif(self.head_drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, aux_logits)`` for training with TF-Slim's auxiliary loss (needs 299-px input)."""
        if self.aux_logits is None:
            raise RuntimeError("this network was built without the auxiliary head (aux_logits=False)")
        _check_input(x)
        for name, attr in STAGES:
            x = getattr(self, attr)(x)
            if name == "PreAuxLogits":
                aux = self.aux_logits(x)
        return self.forward_head(x), aux

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier (and the auxiliary one, if any) with fresh ``num_classes``-way heads."""
        self.num_classes = num_classes
        self.classif = nn.Linear(NUM_FEATURES, num_classes) if num_classes else nn.Identity()
        if self.aux_logits is not None:
            self.aux_logits = AuxLogits(num_classes) if num_classes else None


def _check_input(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an NCHW batch of RGB images [N, 3, H, W], got shape {tuple(x.shape)}")
    if min(x.shape[-2:]) < MIN_INPUT_SIZE:
        raise ValueError(
            f"images must be at least {MIN_INPUT_SIZE} x {MIN_INPUT_SIZE} pixels, got {x.shape[-2]} x {x.shape[-1]}"
        )
