"""``TorchScriptEngine``: the fused network traced to TorchScript and run through oneDNN Graph on the CPU.

Eager PyTorch calls oneDNN once per operator, and each call pays for setting up its primitive (190
convolutions per image) and leaves cat, pooling and branch copies as separate passes. oneDNN Graph ("LLGA",
PyTorch's ``torch.jit.enable_onednn_fusion``) takes the whole frozen TorchScript graph, partitions it into
fused kernels (conv + bias + residual sum + ReLU) compiled once per input shape, and runs them with no
per-operator dispatch. docs/performance.md measures it beside the eager fused network.

What it costs: tracing and freezing on the first call, and a compile for each new batch shape on its first
two calls: a win for batch jobs and servers, not for classifying one photo. The traced
network is the fused one without merged branch openings (oneDNN Graph fuses a conv with what follows it,
and a channel split stops that), folded in float32 before any cast like every irv2 engine.

PyTorch 2.13 marks TorchScript deprecated in favour of torch.compile. This engine exists because, on this
CPU, torch.compile (inductor) is slower than oneDNN Graph for this network and takes minutes to compile;
``compile=True`` stays the torch.compile route. A PyTorch without ``torch.jit`` tracing or oneDNN Graph
makes ``engine="torchscript"`` fail at load with that reason.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator

import torch

from ..model import InceptionResNetV2
from .catalog import spec_of
from .fused_network import FusedInceptionResNetV2
from .onnx_graph import NetworkOutputs
from .precision import Precision
from .runner import InferenceEngine


class TorchScriptEngine(InferenceEngine):
    """The inference path of an ``irv2.Module`` through TorchScript and oneDNN Graph (CPU, float32/bfloat16).

    Follows ``model`` like ``InferenceEngine``: changed weights are fused and traced again at the next call.
    """

    merge_openings = False

    def __init__(self, model: InceptionResNetV2, precision: Precision) -> None:
        device = next(model.parameters()).device
        if device.type != "cpu":
            raise ValueError(f"the TorchScript engine runs oneDNN Graph on the CPU, not {device.type}")
        dtypes = spec_of(TorchScriptEngine).dtypes
        if precision.name not in dtypes:
            raise ValueError(f"the TorchScript engine runs {' or '.join(dtypes)}, not {precision.name}")
        if not (hasattr(torch.jit, "enable_onednn_fusion") and torch.backends.mkldnn.is_available()):
            raise ValueError(
                "this PyTorch build has no oneDNN Graph (torch.jit.enable_onednn_fusion): use engine='torch'"
            )
        super().__init__(model, precision, fused=True, compile=False)
        self._traced: torch.jit.ScriptModule | None = None
        self._tracing = threading.Lock()  # a server's worker threads may make their first calls together

    def catalog_options(self) -> dict[str, bool]:
        return {}  # one record, whatever its parent class's options

    def forward(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        """``x`` NCHW in [-1, 1], in the model's dtype → logits, or the 1536 features if ``pre_logits``."""
        with self._tracing:
            network = self.network  # rebuilt here when the model changed (which drops the trace)
            if self._traced is None:
                self._traced = _trace(network, x)
            traced = self._traced
        with onednn_fusion():
            outputs = traced(x)
        return outputs[-1] if pre_logits or len(outputs) == 1 else outputs[0]

    def _adopt(self, network: FusedInceptionResNetV2) -> None:
        super()._adopt(network)
        self._traced = None


def _trace(network: FusedInceptionResNetV2, x: torch.Tensor) -> torch.jit.ScriptModule:
    """``network`` as a frozen TorchScript module returning ``(logits, features)`` (or ``(features,)``)."""
    with torch.no_grad(), warnings.catch_warnings():
        # The shape checks in forward_features become constants in the trace: the caller has checked x.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # torch 2.13 deprecates trace and freeze in favour of torch.compile; see the module docstring.
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(NetworkOutputs(network).eval(), x, check_trace=False)
        return torch.jit.freeze(traced)


_fusion_lock = threading.Lock()
_fusion_users = 0
_fusion_saved = False


@contextlib.contextmanager
def onednn_fusion() -> Iterator[None]:
    """oneDNN Graph fusion on while any irv2 call runs inside, then back to what the process had.

    The switch is process-wide, and TorchScript picks the fused plan while a call runs: calls overlapping in
    threads share one "on" period (counted), so none sees it switched off under it.
    """
    global _fusion_users, _fusion_saved
    with _fusion_lock:
        if _fusion_users == 0:
            _fusion_saved = torch.jit.onednn_fusion_enabled()
            torch.jit.enable_onednn_fusion(True)
        _fusion_users += 1
    try:
        yield
    finally:
        with _fusion_lock:
            _fusion_users -= 1
            if _fusion_users == 0:
                torch.jit.enable_onednn_fusion(_fusion_saved)
