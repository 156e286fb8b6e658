"""``FusedInceptionResNetV2``: the same function as ``InceptionResNetV2``, rearranged for inference.

Built from a loaded network by ``fuse``; never trained. What changes, and why each step is exact:

- every conv + BatchNorm pair is one conv with a bias (``fold_conv_bn``), its ReLU (and the residual sum)
  applied inside the conv kernel on CPU (``kernels.FusedConv``);
- the 1x1 convs that open the branches of a block all read the block's input, so they run as one wider
  conv whose output is split by channel (``merge_convs``); one large matrix multiply instead of three;
- the residual scale (0.17, 0.10, 0.20) is folded into the up-projection, and the sum is done in place;
- Mixed_5b's ``avg_pool 3x3 → conv 1x1`` becomes ``conv 1x1 → avg_pool 3x3``: both are linear, and
  TF's SAME average divides by the in-bounds count so its weights sum to one and the bias passes through.
  The 1x1 then joins the merged opening conv and the pool runs over 64 channels instead of 192.

The input and output contract is the plain network's: NCHW in [-1, 1] → logits, ``forward_features`` and
``forward_head(pre_logits=...)``. Results match the unfused network to about 1e-6 relative in float32.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..model import BASE_ENDPOINTS, InceptionResNetV2
from ..model.blocks import Block8, Block17, Block35, Mixed5b, Mixed6a, Mixed7a
from ..model.layers import ConvBnAct
from ..model.network import _check_input
from .fold import fold_conv_bn, merge_convs, plain_conv
from .kernels import FusedConv


class SplitConv(nn.Module):
    """Several same-input branch openings run as one conv; returns their outputs as channel slices.

    With ``merge=False`` they stay separate convs (for graph compilers, which fuse each conv with what follows
    it but stop at a channel split)."""

    def __init__(self, layers: list[ConvBnAct], merge: bool = True) -> None:
        super().__init__()
        self.merge = merge
        if merge:
            self.conv = FusedConv(merge_convs([fold_conv_bn(layer) for layer in layers]))
            self.sizes = [layer.conv.out_channels for layer in layers]
        else:
            self.convs = nn.ModuleList(_folded(layer) for layer in layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.merge:
            return tuple(conv(x) for conv in self.convs)
        return torch.split(self.conv(x), self.sizes, dim=1)


def _folded(layer: ConvBnAct, relu: bool = True) -> FusedConv:
    return FusedConv(fold_conv_bn(layer), relu=relu)


def _chain(layers: nn.Sequential | list[ConvBnAct]) -> nn.Sequential:
    return nn.Sequential(*(_folded(layer) for layer in layers))


class FusedMixed5b(nn.Module):
    def __init__(self, block: Mixed5b, merge: bool = True) -> None:
        super().__init__()
        self.open = SplitConv([block.branch0, block.branch1[0], block.branch2[0]], merge)
        self.branch1 = _chain(block.branch1[1:])
        self.branch2 = _chain(block.branch2[1:])
        pool, pool_conv = block.branch3
        # The pool branch's 1x1 runs before its pool (exact, see above), and its ReLU after the pool.
        self.pool_conv = _folded(pool_conv, relu=False)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0, b1, b2 = self.open(x)
        b3 = torch.relu(self.pool(self.pool_conv(x)))
        return torch.cat([b0, self.branch1(b1), self.branch2(b2), b3], 1)


class FusedResidual(nn.Module):
    """``relu(x + up(concat(branches)))``, with the block's scale folded into ``up`` and the sum and ReLU
    done by the up-projection's kernel."""

    def __init__(self, block: Block35 | Block17 | Block8, merge: bool = True) -> None:
        super().__init__()
        branches = [getattr(block, name) for name in block._branch_names]
        self.open = SplitConv([b if isinstance(b, ConvBnAct) else b[0] for b in branches], merge)
        self.tails = nn.ModuleList(
            nn.Identity() if isinstance(b, ConvBnAct) or len(b) == 1 else _chain(b[1:]) for b in branches
        )
        self.up = FusedConv(plain_conv(block.conv2d, block.scale), relu=isinstance(block.act, nn.ReLU))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        heads = self.open(x)
        return self.up(torch.cat([tail(head) for tail, head in zip(self.tails, heads, strict=True)], 1), residual=x)


class FusedMixed6a(nn.Module):
    def __init__(self, block: Mixed6a) -> None:
        super().__init__()
        self.branch0 = _folded(block.branch0)
        self.branch1 = _chain(block.branch1)
        self.branch2 = block.branch2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class FusedMixed7a(nn.Module):
    def __init__(self, block: Mixed7a, merge: bool = True) -> None:
        super().__init__()
        self.open = SplitConv([block.branch0[0], block.branch1[0], block.branch2[0]], merge)
        self.tails = nn.ModuleList([_chain(block.branch0[1:]), _chain(block.branch1[1:]), _chain(block.branch2[1:])])
        self.branch3 = block.branch3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        heads = self.open(x)
        return torch.cat([*(tail(head) for tail, head in zip(self.tails, heads, strict=True)), self.branch3(x)], 1)


class FusedInceptionResNetV2(nn.Module):
    """Inference-only Inception-ResNet-v2 (see the module docstring); create it with ``fuse(model)``."""

    def __init__(self, model: InceptionResNetV2, merge: bool = True) -> None:
        super().__init__()
        self.num_classes = model.num_classes
        self.num_features = model.num_features
        self.stem = nn.Sequential(
            _folded(model.conv2d_1a),
            _folded(model.conv2d_2a),
            _folded(model.conv2d_2b),
            model.maxpool_3a,
            _folded(model.conv2d_3b),
            _folded(model.conv2d_4a),
            model.maxpool_5a,
        )
        block17s = [FusedResidual(block, merge) for block in model.repeat_1]
        blocks: list[tuple[nn.Module, str | None]] = [
            (FusedMixed5b(model.mixed_5b, merge), "Mixed_5b"),
            *((FusedResidual(block, merge), None) for block in model.repeat),
            (FusedMixed6a(model.mixed_6a), "Mixed_6a"),
            *((block, None) for block in block17s[:-1]),
            (block17s[-1], "PreAuxLogits"),
            (FusedMixed7a(model.mixed_7a, merge), "Mixed_7a"),
            *((FusedResidual(block, merge), None) for block in model.repeat_2),
            (FusedResidual(model.block8, merge), None),
            (_folded(model.conv2d_7b), "Conv2d_7b_1x1"),
        ]
        self.blocks = nn.Sequential(*(block for block, _ in blocks))
        # The TF-Slim end point each layer of [*stem, *blocks] gives (None for most), in network order.
        self._endpoint_names = [*BASE_ENDPOINTS[: len(self.stem)], *(name for _, name in blocks)]
        self.classif = _copy_linear(model.classif)
        self.requires_grad_(False)
        self.eval()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` in [-1, 1] → the ``Conv2d_7b_1x1`` map ``[N, 1536, h, w]``."""
        _check_input(x)
        return self.blocks(self.stem(x))

    def forward_endpoints(self, x: torch.Tensor, names: Iterable[str] = BASE_ENDPOINTS) -> dict[str, torch.Tensor]:
        """The TF-Slim end points ``names`` (of ``BASE_ENDPOINTS``), NCHW, as the plain network's
        ``forward_endpoints`` gives them; runs only as far as the last one asked for."""
        _check_input(x)
        wanted = set(names)
        unknown = wanted - set(BASE_ENDPOINTS)
        if unknown:
            raise ValueError(f"no such end point {sorted(unknown)}; the end points are {list(BASE_ENDPOINTS)}")
        points: dict[str, torch.Tensor] = {}
        layers = [*self.stem, *self.blocks]
        for index, (layer, name) in enumerate(zip(layers, self._endpoint_names, strict=True)):
            if len(points) == len(wanted):
                break
            x = layer(x)
            if name in wanted:
                following = layers[index + 1] if index + 1 < len(layers) else None
                # A residual block adds into its input in place (FusedConv): keep the end point's own copy.
                points[name] = x.clone() if isinstance(following, FusedResidual) else x
        return points

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool and classifier, in float32 whatever the network's precision: the head is
        0.01% of the work, and averaging 64 bfloat16 values in bfloat16 would add its own rounding."""
        x = x.float().mean(dim=(2, 3))
        if pre_logits or isinstance(self.classif, nn.Identity):
            return x
        return F.linear(x, self.classif.weight.float(), self.classif.bias.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def fuse(model: InceptionResNetV2, merge: bool = True) -> FusedInceptionResNetV2:
    """An inference-only copy of ``model`` with BatchNorm, residual scales and branch openings folded
    (``merge=False`` keeps the branch openings as separate convs).

    ``model`` is left untouched (it stays the network to fine-tune, save or export); the copy has its own
    tensors on the same device and in the same dtype, and no gradients.
    """
    with torch.no_grad():
        return FusedInceptionResNetV2(model, merge)


def _copy_linear(layer: nn.Module) -> nn.Module:
    if not isinstance(layer, nn.Linear):
        return nn.Identity()
    copy = nn.Linear(layer.in_features, layer.out_features, device=layer.weight.device, dtype=layer.weight.dtype)
    with torch.no_grad():
        copy.weight.copy_(layer.weight)
        copy.bias.copy_(layer.bias)
    return copy.requires_grad_(False)
