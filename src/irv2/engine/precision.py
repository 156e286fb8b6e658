"""Which number formats the network can run in, on which devices, and what each one costs in accuracy.

``float32`` is the exact mode (within about 1e-6 of TensorFlow). On CUDA it keeps cuDNN off TF32, which
PyTorch allows for convolutions by default and which moves the logits by about 3e-3 relative; ``tf32`` asks
for it explicitly. ``bfloat16`` runs the whole network in bfloat16 on CPUs with AVX512-BF16 or AMX and on
GPUs; ``float16`` on GPUs only (CPUs have no fast float16 convolutions). ``int8`` runs on the CPU through
OpenVINO, quantized by NNCF (``openvino_engine``); its tensors in and out stay float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

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


@dataclass(frozen=True)
class Precision:
    """A named number format: the dtype tensors are stored and computed in, and whether TF32 is allowed."""

    name: str
    dtype: torch.dtype
    allow_tf32: bool = False

    @property
    def exact(self) -> bool:
        return self.name == "float32"


def resolve_precision(spec: str | torch.dtype | None, device: torch.device) -> Precision:
    """The :class:`Precision` for ``spec`` (a name, an alias such as ``bf16``, a torch dtype, or None for
    float32), refusing combinations the device cannot run well, with the reason and the alternative."""
    if spec is None:
        name = "float32"
    elif isinstance(spec, torch.dtype):
        names = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
        if spec == torch.float64:
            return Precision("float64", torch.float64)  # a reference mode for checking numerics
        if spec not in names:
            raise ValueError(f"dtype {spec} is not supported; use one of {', '.join(PRECISIONS)}")
        name = names[spec]
    elif str(spec).lower() == "float64":
        return Precision("float64", torch.float64)
    else:
        name = dtype_name(spec)
    if name == "tf32" and device.type != "cuda":
        raise ValueError("tf32 is a CUDA math mode; on this device use float32 (exact) or bfloat16")
    if name == "int8" and device.type != "cpu":
        raise ValueError("int8 runs on the CPU (OpenVINO); on a GPU use bfloat16 or float16")
    if name == "float16" and device.type == "cpu":
        raise ValueError("float16 runs on GPUs; on a CPU use bfloat16 (fast on CPUs with AVX512-BF16 or AMX)")
    dtype = {
        "float32": torch.float32,
        "tf32": torch.float32,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
        "int8": torch.float32,  # the network's own tensors; the int8 graph lives in OpenVINO
    }
    return Precision(name, dtype[name], allow_tf32=name == "tf32")


def cpu_has_fast_bfloat16() -> bool:
    """Whether this CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX); without them oneDNN
    emulates bfloat16 and it runs slower than float32."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:  # not Linux: trust oneDNN's own (looser) check
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@contextlib.contextmanager
def math_mode(precision: Precision, device: torch.device) -> Iterator[None]:
    """On CUDA, for the duration of a forward pass: cuDNN's TF32 switch as the precision says, and cuDNN's
    benchmark mode (it times the convolution algorithms once per input shape and keeps the fastest; the
    network's shapes repeat, so this pays for itself after the first batch). The caller's settings return
    afterwards."""
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    saved = cudnn.allow_tf32, cudnn.benchmark
    cudnn.allow_tf32, cudnn.benchmark = precision.allow_tf32, True
    try:
        yield
    finally:
        cudnn.allow_tf32, cudnn.benchmark = saved
