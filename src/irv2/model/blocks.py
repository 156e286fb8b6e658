"""The stages of TF-Slim's Inception-ResNet-v2, one module each, named as timm names them.

Attribute names (``branch0``, ``branch1.0``, ``conv2d`` …) are the state-dict keys and therefore public:
they mirror the TF-Slim scopes (``Branch_0``, ``Branch_1/Conv2d_0a_1x1`` …) so that the TF name map in
``irv2.weights`` stays mechanical and timm checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBnAct, same


class Mixed5b(nn.Module):
    """35 x 35 x 192 → 35 x 35 x 320 (96 + 64 + 96 + 64)."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = ConvBnAct(192, 96, 1)
        self.branch1 = nn.Sequential(ConvBnAct(192, 48, 1), ConvBnAct(48, 64, 5, padding=same(5)))
        self.branch2 = nn.Sequential(
            ConvBnAct(192, 64, 1),
            ConvBnAct(64, 96, 3, padding=same(3)),
            ConvBnAct(96, 96, 3, padding=same(3)),
        )
        # TF's SAME average pool divides by the number of in-bounds cells only (4 at corners, 6 on edges).
        self.branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), ConvBnAct(192, 64, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class _Residual(nn.Module):
    """``out = act(x + scale * up(concat(branches)))``, the shape of every block35/17/8.

    ``up`` (``conv2d``) is a 1x1 conv with a bias and no BatchNorm: it projects the concatenated branches
    back to the input width so the sum is possible.
    """

    scale: float
    _branch_names: tuple[str, ...] = ("branch0", "branch1")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = torch.cat([getattr(self, name)(x) for name in self._branch_names], 1)
        return self.act(x + self.scale * self.conv2d(branches))


class Block35(_Residual):
    """35 x 35 x 320 residual block (×10 in ``repeat``, scale 0.17)."""

    _branch_names = ("branch0", "branch1", "branch2")

    def __init__(self, scale: float = 0.17) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = ConvBnAct(320, 32, 1)
        self.branch1 = nn.Sequential(ConvBnAct(320, 32, 1), ConvBnAct(32, 32, 3, padding=same(3)))
        self.branch2 = nn.Sequential(
            ConvBnAct(320, 32, 1),
            ConvBnAct(32, 48, 3, padding=same(3)),
            ConvBnAct(48, 64, 3, padding=same(3)),
        )
        self.conv2d = nn.Conv2d(128, 320, 1)
        self.act = nn.ReLU()


class Mixed6a(nn.Module):
    """35 x 35 x 320 → 17 x 17 x 1088 (384 + 384 + 320); all stride-2 layers VALID."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = ConvBnAct(320, 384, 3, stride=2)
        self.branch1 = nn.Sequential(
            ConvBnAct(320, 256, 1),
            ConvBnAct(256, 256, 3, padding=same(3)),
            ConvBnAct(256, 384, 3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class Block17(_Residual):
    """17 x 17 x 1088 residual block (×20 in ``repeat_1``, scale 0.10), with factorised 1x7/7x1 convs."""

    def __init__(self, scale: float = 0.10) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = ConvBnAct(1088, 192, 1)
        self.branch1 = nn.Sequential(
            ConvBnAct(1088, 128, 1),
            ConvBnAct(128, 160, (1, 7), padding=same((1, 7))),
            ConvBnAct(160, 192, (7, 1), padding=same((7, 1))),
        )
        self.conv2d = nn.Conv2d(384, 1088, 1)
        self.act = nn.ReLU()


class Mixed7a(nn.Module):
    """17 x 17 x 1088 → 8 x 8 x 2080 (384 + 288 + 320 + 1088)."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(ConvBnAct(1088, 256, 1), ConvBnAct(256, 384, 3, stride=2))
        self.branch1 = nn.Sequential(ConvBnAct(1088, 256, 1), ConvBnAct(256, 288, 3, stride=2))
        self.branch2 = nn.Sequential(
            ConvBnAct(1088, 256, 1),
            ConvBnAct(256, 288, 3, padding=same(3)),
            ConvBnAct(288, 320, 3, stride=2),
        )
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class Block8(_Residual):
    """8 x 8 x 2080 residual block (×9 in ``repeat_2``, scale 0.20).

    The network ends with one more, ``block8`` (TF scope ``Block8``), built with TF-Slim's default
    arguments: scale 1.0 and no activation after the sum (``no_relu=True``).
    """

    def __init__(self, scale: float = 0.20, no_relu: bool = False) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = ConvBnAct(2080, 192, 1)
        self.branch1 = nn.Sequential(
            ConvBnAct(2080, 192, 1),
            ConvBnAct(192, 224, (1, 3), padding=same((1, 3))),
            ConvBnAct(224, 256, (3, 1), padding=same((3, 1))),
        )
        self.conv2d = nn.Conv2d(448, 2080, 1)
        self.act = nn.Identity() if no_relu else nn.ReLU()


class AuxLogits(nn.Module):
    """The auxiliary classifier on ``PreAuxLogits`` (17 x 17 x 1088), used only when fine-tuning.

    TF-Slim names its first layer ``Conv2d_1a_3x3`` although it is a 5x5/3 VALID average pool; its
    second conv has a kernel as large as the pooled map (5x5 at 299 px), so the head needs a 299-px input.
    """

    def __init__(self, num_classes: int = 1001) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv2d_1b = ConvBnAct(1088, 128, 1)
        self.conv2d_2a = ConvBnAct(128, 768, 5)
        self.classif = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        if x.shape[-2:] != (5, 5):
            raise ValueError(
                f"the auxiliary head needs a 5 x 5 pooled map (a 299 x 299 input), got {tuple(x.shape[-2:])}"
            )
        x = self.conv2d_2a(self.conv2d_1b(x))
        return self.classif(torch.flatten(x, 1))
