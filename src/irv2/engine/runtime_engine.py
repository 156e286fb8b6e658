"""``RuntimeEngine``: what the engines backed by another runtime (ONNX Runtime, OpenVINO) share.

Such an engine converts ``module.model`` into its runtime's format once per weights (cached under
``$IRV2_HOME/engines``), keeps the plain network in float32 as the source it converts from, and hands the
runtime numpy batches NCHW in [-1, 1]. A subclass says which precisions it runs, how it builds (``build``)
and how it runs a batch (``_run``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..extras import require_extra
from ..model import InceptionResNetV2
from .calibration import check_calibration, images_sha256
from .precision import Precision


class RuntimeEngine:
    """The inference path of an ``irv2.Module`` through an external runtime (CPU).

    Args:
        model: the plain network (its current weights are followed; it is read, never changed).
        precision: one of the subclass's ``dtypes``.
        calibration: for int8, images ``[N, H, W, 3]`` in [0, 1] whose activation ranges fix the quantization
            (32-128 typical images of the task); ignored otherwise.
        image_size: the module's input size (the calibration images must have it).
    """

    name: str
    runtime: str  # for messages: "ONNX Runtime"
    extra: str  # the pip extra it needs
    dtypes: tuple[str, ...]

    def __init__(
        self,
        model: InceptionResNetV2,
        precision: Precision,
        calibration: np.ndarray | None = None,
        *,
        image_size: tuple[int, int] = (299, 299),
    ) -> None:
        require_extra(self.extra, f"the {self.runtime} engine")
        self._require(precision)
        if precision.name not in self.dtypes:
            raise ValueError(f"{self.runtime} runs {' or '.join(self.dtypes)}, not {precision.name}")
        if precision.name == "int8":
            calibration = check_calibration(calibration, tuple(image_size))
        self.model = model
        self.precision = precision
        self.calibration = calibration
        # What the quantization was calibrated on, for records that must tell runs apart (batch jobs).
        self.calibration_sha256 = images_sha256(calibration) if precision.name == "int8" else None
        self.image_size = tuple(image_size)
        self.path: Path | None = None

    def _require(self, precision: Precision) -> None:
        """Raise MissingDependencyError for a package that ``precision`` needs beyond the extra's (none here)."""

    def place(self, device: torch.device | str, *, fold: bool = True) -> None:
        """Keep the model in float32 on ``device`` (the runtime's model is converted from it) and build now,
        once, so the first call is as fast as the rest."""
        self.model.to(device=device, dtype=torch.float32).eval()
        self.build()

    def build(self) -> Path:
        """Convert (and quantize) now if not cached yet, and open it; returns the cached file or folder."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        """``x`` NCHW in [-1, 1] → logits, or the 1536 features if ``pre_logits`` (float32, on ``x``'s device)."""
        batch = x.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
        return self._run(batch, pre_logits, x.device)

    def forward_images(self, images: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        """``images`` NCHW (or its NHWC view) in [0, 1] → as ``forward``; the same float32 operations as
        the PyTorch engines' ``2 * x - 1``, so the same logits bit for bit.

        The scaling and the layout change run in numpy on the calling thread. Done in PyTorch, they would wake
        its OpenMP threads, which spin for a while after each operation, on the cores the runtime needs
        (docs/performance.md measures what that cost at batch 1)."""
        array = images.detach().to(device="cpu", dtype=torch.float32).numpy()
        batch = np.empty(array.shape, np.float32)  # a new NCHW buffer: the caller's images stay as they are
        np.multiply(array, np.float32(2), out=batch)
        batch -= np.float32(1)
        return self._run(batch, pre_logits, images.device)

    def _run(self, batch: np.ndarray, pre_logits: bool, device: torch.device) -> torch.Tensor:
        raise NotImplementedError
