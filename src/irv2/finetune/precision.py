"""``dtype`` (``--dtype auto|float32|bfloat16``): when to train under bfloat16 autocast.

``auto`` picks bfloat16 where the hardware computes it natively, float32 elsewhere:

* CUDA: bfloat16 when ``torch.cuda.is_bf16_supported()`` (Ampere and newer), else float32;
* CPU: bfloat16 when it has bfloat16 dot-product instructions (AVX512-BF16 or AMX, the check
  ``irv2.engine.precision.cpu_has_fast_bfloat16`` makes for inference too), else float32;
* anything else (MPS, ...): float32.

Autocast keeps the weights, the optimizer and the losses in float32; only matrix multiplications and
convolutions run in bfloat16. See docs/performance.md for what it buys on a CPU.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

import torch

from ..engine.precision import cpu_has_fast_bfloat16
from ..errors import OptionError
from .config import DTYPES


def autocast_dtype(dtype: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the ``dtype`` option on ``device``: ``torch.bfloat16``, or None for float32.

    Raises:
        OptionError: ``bfloat16`` asked for on a GPU without bfloat16 support, or an unknown name.
    """
    if dtype == "float32":
        return None
    if dtype == "bfloat16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise OptionError(f"dtype bfloat16: {torch.cuda.get_device_name(device)} has no bfloat16 support")
        return torch.bfloat16
    if dtype != "auto":
        raise OptionError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_fast_bfloat16() else None
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """``torch.autocast`` for ``dtype`` on ``device``'s type, or a no-op for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def autocast_name(dtype: torch.dtype | None) -> str:
    """``bfloat16`` or ``float32``: what :func:`autocast_dtype` chose, in irv2's vocabulary."""
    return "bfloat16" if dtype == torch.bfloat16 else "float32"
