"""TorchScript: a traced graph that ``torch.jit.load`` runs in Python and libtorch runs in C++.

Why TorchScript and not a ``torch.export`` program (``.pt2``): a TorchScript file loads in any later PyTorch
and in C++ without this package or its Python source, which is what "deploy the model" usually means; a
``.pt2`` program is tied more closely to the PyTorch version that wrote it and runs from C++ only through
AOTInductor. PyTorch 2.13 marks ``torch.jit.trace`` deprecated; the ONNX export is the long-lived format.

The traced graph takes ``images`` float32 ``[B, H, W, 3]`` in [0, 1] and returns ``(logits, features)``
(``(features,)`` for a feature-vector module). Batch, height and width are all free: nothing in the traced
network depends on them except through tensor shapes. Sizes below 75 x 75 fail inside the network.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from .wrapper import ExportWrapper

# ``torch.jit.save`` stores these next to the graph; ``torch.jit.load(path, _extra_files={NAME: ""})`` reads them.
METADATA_FILE = "irv2.json"


def write_torchscript(wrapper: ExportWrapper, path: Path, *, image_size: tuple[int, int], metadata_json: str) -> None:
    """Trace ``wrapper`` and save it at ``path`` with ``metadata_json`` as the extra file ``irv2.json``."""
    example = torch.zeros(2, *image_size, 3)
    with warnings.catch_warnings():
        # torch 2.13 deprecates tracing; the decision and the alternatives are in this module's docstring.
        warnings.simplefilter("ignore", DeprecationWarning)
        # The network's only Python branches are its input-size checks; baking them in as constants is right.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # check_trace would run the network twice more on the example; export() compares with irv2 instead.
        with torch.no_grad():
            traced = torch.jit.trace(wrapper, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: metadata_json})


def run_torchscript(path: Path, images: np.ndarray, output_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Load the TorchScript file and run it on ``images``: ``{output name: array}``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        outputs = scripted(torch.from_numpy(images))
    return {name: value.numpy() for name, value in zip(output_names, outputs, strict=True)}
