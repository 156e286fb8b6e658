"""``--precision auto|fp32|bf16``: when to train under bfloat16 autocast.

``auto`` picks bf16 where the hardware computes it natively, fp32 elsewhere:

* CUDA: bf16 when ``torch.cuda.is_bf16_supported()`` (Ampere and newer), else fp32;
* CPU: bf16 when the CPU advertises AMX-BF16 or AVX512-BF16 (Linux ``/proc/cpuinfo`` flags
  ``amx_bf16`` / ``avx512_bf16``; ``torch.backends.cpu.get_cpu_capability()`` says only "AVX512"), else
  fp32; other platforms fp32;
* anything else (MPS, ...): fp32.

Autocast keeps the weights, the optimizer and the losses in float32; only matrix multiplications and
convolutions run in bf16. See docs/performance.md for what it buys on a CPU.
"""

from __future__ import annotations

import contextlib
import functools
from contextlib import AbstractContextManager

import torch

_CPU_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU advertises bf16 instructions (Linux only; False where it cannot tell)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return bool(_CPU_BF16_FLAGS & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``: ``torch.bfloat16``, or None for plain fp32.

    Raises:
        ValueError: ``bf16`` asked for on a GPU without bf16 support, or an unknown precision.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support")
        return torch.bfloat16
    if precision != "auto":
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """``torch.autocast`` for ``dtype`` on ``device``'s type, or a no-op for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def precision_name(dtype: torch.dtype | None) -> str:
    return "bf16" if dtype == torch.bfloat16 else "fp32"
