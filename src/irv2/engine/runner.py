"""``InferenceEngine``: runs a loaded network the fast way, kept in step with the network itself.

The plain ``InceptionResNetV2`` stays the source of truth (it is what fine-tuning changes, ``irv2.save``
writes and export traces). The engine holds a fused copy of it (``fuse``) in channels-last layout and the
chosen precision, optionally compiled, and rebuilds that copy whenever the plain network's tensors change
(an optimizer step, ``load_state_dict``, ``.to()``), so it never serves stale weights.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

import torch
from torch import nn

from ..model import InceptionResNetV2
from .catalog import spec_of
from .fingerprint import model_fingerprint
from .fused_network import FusedInceptionResNetV2, fuse
from .precision import Precision, cpu_has_fast_bfloat16, math_mode


class InferenceEngine:
    """The inference path of an ``irv2.Module``.

    Args:
        model: the plain network (its current weights, device and dtype are followed).
        precision: the number format to run in (``resolve_precision``).
        fused: fold BatchNorm and fuse kernels (exact to ~1e-6); False runs the plain network as it is.
        compile: wrap the fused network in ``torch.compile`` (compiled on first use per input shape and kept
            in torch's on-disk cache, so later processes start faster).
    """

    # Run a block's same-input opening convs as one wider conv (eager oneDNN likes one large GEMM; a graph
    # compiler fuses each conv with what follows it, and stops at the split).
    merge_openings = True

    def __init__(
        self, model: InceptionResNetV2, precision: Precision, *, fused: bool = True, compile: bool = False
    ) -> None:
        self.model = model
        self.precision = precision
        self.fused = fused
        self.compile = compile
        self._network: FusedInceptionResNetV2 | None = None
        self._built_for: int | None = None
        self._compiled: dict[bool, Callable[[torch.Tensor], torch.Tensor]] = {}

    @classmethod
    def from_catalog(
        cls, model: InceptionResNetV2, precision: Precision, *, image_size: tuple[int, int], calibration, **options
    ) -> InferenceEngine:
        """The engine as its catalog record builds it (``options``: the record's ``fused`` and ``compile``)."""
        return cls(model, precision, **options)

    def catalog_options(self) -> dict[str, bool]:
        """The options that tell this class's engines apart in the catalog."""
        return {"fused": self.fused, "compile": self.compile}

    @property
    def name(self) -> str:
        """The engine's name in :data:`irv2.engine.catalog.ENGINES` (the record of this class and options)."""
        return spec_of(type(self), **self.catalog_options()).name

    def place(self, device: torch.device | str, *, fold: bool = True) -> None:
        """Move the model to ``device`` in the engine's precision. The fused copy is folded first, from the
        float32 weights, so a bfloat16 or float16 engine rounds each folded weight once; with ``fold`` False
        (the train graph, whose weights are about to change) it is made at the first inference call instead."""
        on_cpu = torch.device(device).type == "cpu"
        if self.precision.dtype == torch.bfloat16 and on_cpu and not cpu_has_fast_bfloat16():
            warnings.warn(
                "this CPU has no bfloat16 instructions (AVX512-BF16 or AMX): bfloat16 is emulated and slower "
                "than float32 here",
                RuntimeWarning,
                stacklevel=4,
            )
        fused = fuse(self.model, merge=self.merge_openings) if self.fused and fold else None
        self.model.to(device=device, dtype=self.precision.dtype).eval()
        if fused is not None:
            self._adopt(fused)

    def forward(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        """``x`` NCHW in [-1, 1], in the model's dtype → logits, or the 1536 features if ``pre_logits``.

        Call it without autograd (inside ``torch.inference_mode()``): the fused kernels have no gradients.
        """
        with math_mode(self.precision, x.device):
            network = self.network
            if self.compile and self.fused:
                return self._compiled_forward(pre_logits)(x)
            return network.forward_head(network.forward_features(x), pre_logits=pre_logits)

    def forward_endpoints(self, x: torch.Tensor, names: Iterable[str]) -> dict[str, torch.Tensor]:
        """``x`` as for ``forward`` → the TF-Slim end points ``names`` (of ``BASE_ENDPOINTS``), NCHW, from the
        network ``forward`` runs (eager, also for a compiled engine); without autograd."""
        with math_mode(self.precision, x.device):
            return self.network.forward_endpoints(x, names)

    def forward_images(self, images: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        """``images`` NCHW in [0, 1] (what ``irv2.Module`` is called with) → as ``forward``."""
        return self.forward(2.0 * images - 1.0, pre_logits=pre_logits)

    @property
    def network(self) -> nn.Module:
        """The network ``forward`` runs now: the fused copy (rebuilt if the model changed) or the plain model."""
        if not self.fused:
            return self.model
        if self._built_for != model_fingerprint(self.model):
            self._adopt(fuse(self.model, merge=self.merge_openings))
        return self._network

    def _adopt(self, network: FusedInceptionResNetV2) -> None:
        network = network.to(device=_device_of(self.model), dtype=_dtype_of(self.model))
        self._network = network.to(memory_format=torch.channels_last)
        self._compiled.clear()
        self._built_for = model_fingerprint(self.model)

    def _compiled_forward(self, pre_logits: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        if pre_logits not in self._compiled:
            wrapper = _Head(self._network, pre_logits)
            # "freezing" lets inductor treat the weights as constants: on CPU it pre-packs them into
            # oneDNN's blocked layout once instead of on every call.
            self._compiled[pre_logits] = torch.compile(wrapper, dynamic=False, options={"freezing": True})
        return self._compiled[pre_logits]


class _Head(nn.Module):
    """The fused network as one ``forward`` (what torch.compile traces): logits or pre-logits features."""

    def __init__(self, network: FusedInceptionResNetV2, pre_logits: bool) -> None:
        super().__init__()
        self.network = network
        self.pre_logits = pre_logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.forward_head(self.network.forward_features(x), pre_logits=self.pre_logits)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _dtype_of(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype
