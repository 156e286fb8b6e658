"""Process-wide settings that irv2 makes only where it owns the process: the ``irv2`` command (every
subcommand, ``irv2 serve`` included) and the Ray actors of :mod:`irv2.batch.ray`. Library functions
(``irv2.load``, ``irv2.serve.serve``, ``irv2.finetune``...) leave the caller's process as they found it."""

from __future__ import annotations

import sys


def flush_denormals() -> None:
    """Flush subnormal floats to zero in PyTorch, when PyTorch is loaded (a run on ONNX Runtime or OpenVINO
    from a prepared file never loads it; call this again after a load that may have imported it).

    Subnormals make CPU convolutions many times slower (measured 5-50x with random weights whose activations
    fade), and TensorFlow flushes them to zero on CPU too, so the numbers stay TensorFlow's.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_flush_denormal(True)
