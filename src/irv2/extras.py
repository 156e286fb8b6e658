"""The optional extras (``pip install 'irv2[NAME]'``) and the one check that a capability's packages are there.

Optional capabilities import their heavy dependencies only when used; before they do, they call
:func:`require_extra`, so a missing package is one clear :class:`~irv2.errors.MissingDependencyError` that
names the extra to install, never an ``ImportError`` from deep inside.
"""

from __future__ import annotations

import importlib.util

from .errors import MissingDependencyError

# Extra → the importable modules it provides (what pyproject.toml's optional-dependencies install).
EXTRAS: dict[str, tuple[str, ...]] = {
    "keras": ("h5py",),
    "finetune": ("matplotlib",),
    "serve": ("aiohttp", "prometheus_client"),
    "onnx": ("onnx", "onnxscript", "onnxruntime"),
    "openvino": ("openvino",),  # nncf too, for int8 (checked then)
    "tensorflow": ("tensorflow",),
    "litert": ("tensorflow", "ai_edge_litert"),  # TensorFlow converts, LiteRT's own interpreter checks
    "executorch": ("executorch",),
    "parquet": ("pyarrow",),
    "ray": ("ray",),
    "devkit": ("scipy",),
}


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (found without importing them)."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require_extra(extra: str, purpose: str) -> None:
    """Raise MissingDependencyError when a module of ``extra`` is missing: ``"<purpose> needs <modules>: pip
    install 'irv2[<extra>]'"``. ``purpose`` says what the user asked for (``"the ONNX Runtime engine"``)."""
    missing = missing_modules(extra)
    if missing:
        raise MissingDependencyError(f"{purpose} needs {' and '.join(missing)}: pip install 'irv2[{extra}]'")


def require_torch(purpose: str) -> None:
    """Raise MissingDependencyError when PyTorch cannot be imported: inference from an ONNX Runtime or OpenVINO
    file runs without it, but ``purpose`` (the PyTorch network, a tensor call, fine-tuning...) needs it."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            f"{purpose} needs PyTorch, which is not installed here: pip install torch (irv2 infers from an ONNX "
            "Runtime or OpenVINO file without it)"
        ) from None
