"""The convolution of the fused network, with its ReLU or residual sum done inside the kernel on CPU.

Eager PyTorch runs ``relu(conv(x))`` as two passes over memory; on a CPU the ReLU and the residual add cost
about a third of the network's time. oneDNN applies them as post-ops while the conv output is still in
cache, through the same ``mkldnn._convolution_pointwise`` ops that torch.compile's CPU backend emits. They are
used only where they exist and apply (a CPU tensor in float32 or bfloat16, eager mode); everywhere else
(CUDA, float16/float64, tracing for export, torch.compile, which fuses on its own) the portable
``F.conv2d`` path computes the same function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .fold import ConvParams

_ONEDNN_DTYPES = (torch.float32, torch.bfloat16)


def _onednn_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):  # builds without oneDNN
        return False


ONEDNN = _onednn_available()


def tensor_version(tensor: torch.Tensor) -> int:
    """The tensor's in-place modification counter; 0 for inference tensors (made under
    ``torch.inference_mode``), which keep none and cannot be modified outside it."""
    try:
        return tensor._version
    except RuntimeError:
        return 0


def use_onednn(x: torch.Tensor) -> bool:
    """Whether the fused oneDNN kernels apply to ``x`` (CPU, float32/bfloat16, eager, not exporting)."""
    return (
        ONEDNN
        and x.device.type == "cpu"
        and x.dtype in _ONEDNN_DTYPES
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.compiler.is_compiling()
        and not torch.onnx.is_in_onnx_export()
    )


class FusedConv(nn.Module):
    """``act(conv(x) [+ residual])`` with a bias (BatchNorm already folded in), for inference only.

    ``relu`` says whether a ReLU follows; the parameters never take gradients. On the oneDNN path the sum is
    accumulated into ``residual`` (the caller's own intermediate, no longer needed) and that tensor returned.
    """

    def __init__(self, conv: ConvParams, relu: bool = True) -> None:
        super().__init__()
        # Channels-last weights: the layout oneDNN and cuDNN want for channels-last activations.
        weight = conv.weight.detach().contiguous(memory_format=torch.channels_last)
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)
        self.relu = relu
        self._packed: tuple[tuple, torch.Tensor] | None = None

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if use_onednn(x):
            return self._onednn(x, residual)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        if residual is not None:
            y = y + residual
        return torch.relu(y) if self.relu else y

    def _onednn(self, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        weight = self._packed_weight(x)
        unary = "relu" if self.relu else None
        if residual is None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, weight, self.bias, self.padding, self.stride, [1, 1], 1, unary or "none", [], None
            )
        # The sum is accumulated into ``residual`` itself (oneDNN's "sum" post-op): 10-30% faster on the
        # up-projections than writing a new tensor, because the kernel adds into the output it streams anyway.
        return torch.ops.mkldnn._convolution_pointwise_.binary(
            residual, x, weight, self.bias, self.padding, self.stride, [1, 1], 1, "add", None, unary, [], None
        )

    def _packed_weight(self, x: torch.Tensor) -> torch.Tensor:
        """The weight in the blocked layout oneDNN picks for this input shape, reordered once and kept.

        Unpacked, oneDNN reorders every weight on every call: 220 MB of memory traffic per forward pass, a
        fifth of the time at batch 1. The layout depends on the input shape, so one packed copy is kept, for
        the latest shape (a batch job repeats one shape; a changed shape re-packs once). Dropped by ``.to()``.
        """
        key = (tuple(x.shape), x.dtype, self.weight.data_ptr(), tensor_version(self.weight))
        if self._packed is None or self._packed[0] != key:
            packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
                self.weight.detach().to_mkldnn(), self.padding, self.stride, [1, 1], 1, list(x.shape)
            )
            self._packed = (key, packed)
        return self._packed[1]

    def _apply(self, fn, recurse=True):
        self._packed = None  # .to() / .cuda() / .bfloat16(): the packed copy no longer matches
        return super()._apply(fn, recurse)

    def extra_repr(self) -> str:
        out_c, in_c, kh, kw = self.weight.shape
        geometry = f"kernel_size=({kh}, {kw}), stride={self.stride}, padding={self.padding}"
        return f"{in_c}, {out_c}, {geometry}, relu={self.relu}"
