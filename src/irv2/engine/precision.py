"""Which number formats the network can run in, on which devices, and what each one costs in accuracy.

``float32`` is the exact mode (within about 1e-6 of TensorFlow). On CUDA it keeps cuDNN off TF32, which
PyTorch allows for convolutions by default and which moves the logits by about 3e-3 relative; ``tf32`` asks
for it explicitly. ``bfloat16`` runs the whole network in bfloat16 on CPUs with AVX512-BF16 or AMX and on
GPUs; ``float16`` on GPUs only (CPUs have no fast float16 convolutions). ``int8`` runs on the CPU through
OpenVINO, quantized by NNCF (``openvino_engine``); its tensors in and out stay float32.

On a CPU without bfloat16 instructions (AVX512-BF16, AMX or AVX-NE-CONVERT) ``bfloat16`` is refused with an
error naming float32 and int8: oneDNN cannot run it at all on AVX2-only CPUs, and where it or OpenVINO
emulate it, it is slower than float32 and less exact, or silently computed in float32 (docs/performance.md).

Nothing here imports torch: ``irv2.load`` resolves the precision before it knows whether torch is needed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import OptionError

PRECISIONS = ("float32", "tf32", "bfloat16", "float16", "int8")
# Other spellings users write (``--dtype bf16``), each meaning one of PRECISIONS.
ALIASES = {"fp32": "float32", "float": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
SUMMARIES = {
    "float32": "exact, within about 1e-6 of TensorFlow (on CUDA, cuDNN is kept off TF32)",
    "tf32": "CUDA's TF32 math for convolutions",
    "bfloat16": "CPUs with AVX512-BF16 or AMX, and GPUs",
    "float16": "GPUs",
    "int8": "CPU, OpenVINO quantized by NNCF, calibrated on your images",
}


def dtype_name(spec: str) -> str:
    """The precision ``spec`` names (an alias such as ``bf16`` becomes ``bfloat16``); ValueError if none."""
    name = ALIASES.get(str(spec).lower(), str(spec).lower())
    if name not in PRECISIONS:
        raise ValueError(f"unknown dtype {spec!r}; use one of {', '.join(PRECISIONS)}")
    return name


# The torch dtype each precision stores and computes the network's tensors in (int8's float32: the network's
# own tensors; the int8 graph lives in OpenVINO).
_TORCH_DTYPES = {
    "float32": "float32",
    "tf32": "float32",
    "bfloat16": "bfloat16",
    "float16": "float16",
    "int8": "float32",
    "float64": "float64",
}


@dataclass(frozen=True)
class Precision:
    """A named number format: the dtype tensors are stored and computed in, and whether TF32 is allowed.

    ``torch_dtype`` may be left out: ``dtype`` then names the torch dtype of ``name``, importing torch only
    when asked (an engine running from an ONNX or OpenVINO file never asks)."""

    name: str
    torch_dtype: Any = None
    allow_tf32: bool = False

    @property
    def dtype(self) -> Any:
        """The ``torch.dtype`` the network's tensors are stored and computed in."""
        if self.torch_dtype is not None:
            return self.torch_dtype
        import torch

        return getattr(torch, _TORCH_DTYPES[self.name])

    @property
    def exact(self) -> bool:
        return self.name == "float32"


def device_type(device: Any) -> str:
    """The kind of ``device`` (``cpu``, ``cuda``, ``mps``) from a ``torch.device``, a string such as ``cuda:1``,
    or None (the CPU), without importing torch."""
    if device is None:
        return "cpu"
    kind = getattr(device, "type", None)
    return kind if isinstance(kind, str) else str(device).split(":", 1)[0].strip().lower()


def resolve_precision(spec: Any, device: Any) -> Precision:
    """The :class:`Precision` for ``spec`` (a name, an alias such as ``bf16``, a torch dtype, or None for
    float32) on ``device`` (a ``torch.device``, a string or None for the CPU), refusing combinations the device
    cannot run, with the reason and the alternative (ValueError; ``OptionError`` for bfloat16 on a CPU
    without bfloat16 instructions)."""
    kind = device_type(device)
    torch_dtype = None
    if spec is None:
        name = "float32"
    elif _is_torch_dtype(spec):
        names = {"torch.float32": "float32", "torch.bfloat16": "bfloat16", "torch.float16": "float16"}
        if str(spec) == "torch.float64":
            return Precision("float64", spec)  # a reference mode for checking numerics
        if str(spec) not in names:
            raise ValueError(f"dtype {spec} is not supported; use one of {', '.join(PRECISIONS)}")
        name, torch_dtype = names[str(spec)], spec
    elif str(spec).lower() == "float64":
        return Precision("float64")
    else:
        name = dtype_name(spec)
    if name == "tf32" and kind != "cuda":
        raise ValueError("tf32 is a CUDA math mode; on this device use float32 (exact) or bfloat16")
    if name == "int8" and kind != "cpu":
        raise ValueError("int8 runs on the CPU (OpenVINO); on a GPU use bfloat16 or float16")
    if name == "float16" and kind == "cpu":
        raise ValueError("float16 runs on GPUs; on a CPU use bfloat16 (fast on CPUs with AVX512-BF16 or AMX)")
    if name == "bfloat16" and kind == "cpu" and not cpu_has_fast_bfloat16():
        raise OptionError(NO_BFLOAT16)
    return Precision(name, torch_dtype, allow_tf32=name == "tf32")


NO_BFLOAT16 = (
    "dtype bfloat16: this CPU has no bfloat16 instructions (AVX512-BF16, AMX or AVX-NE-CONVERT), so bfloat16 "
    "would be emulated, slower than float32, or not run at all; use float32 (exact, the fastest here) or int8 "
    "(OpenVINO quantized by NNCF: --dtype int8 --calibration IMAGES)"
)
# The CPU flags of the bfloat16 instruction sets (as /proc/cpuinfo spells them).
_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16", "avx_ne_convert")
# Set to 0 to treat this CPU as one without bfloat16 instructions (what users of such CPUs see; tests use it).
BFLOAT16_VARIABLE = "IRV2_CPU_BFLOAT16"


def cpu_has_fast_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16, AMX or AVX-NE-CONVERT): without them oneDNN
    emulates bfloat16 slower than float32 (or, on AVX2-only CPUs, refuses it) and OpenVINO computes float32.
    ``IRV2_CPU_BFLOAT16=0`` answers no on any CPU."""
    if os.environ.get(BFLOAT16_VARIABLE, "").strip() == "0":
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:  # not Linux: trust oneDNN's own (looser) check
        import torch

        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return any(flag in flags for flag in _BFLOAT16_FLAGS)


def _is_torch_dtype(value: Any) -> bool:
    """Whether ``value`` is a ``torch.dtype`` (without importing torch: a caller holding one has imported it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.dtype)


@contextlib.contextmanager
def math_mode(precision: Precision, device: Any) -> Iterator[None]:
    """On CUDA, for the duration of a forward pass: cuDNN's TF32 switch as the precision says, and cuDNN's
    benchmark mode (it times the convolution algorithms once per input shape and keeps the fastest; the
    network's shapes repeat, so this pays for itself after the first batch). The caller's settings return
    afterwards."""
    if device.type != "cuda":
        yield
        return
    import torch

    cudnn = torch.backends.cudnn
    saved = cudnn.allow_tf32, cudnn.benchmark
    cudnn.allow_tf32, cudnn.benchmark = precision.allow_tf32, True
    try:
        yield
    finally:
        cudnn.allow_tf32, cudnn.benchmark = saved
