"""``RuntimeEngine``: what the engines backed by another runtime (ONNX Runtime, OpenVINO) share.

Such an engine runs a file in its runtime's format, one of three kinds:

- converted from ``module.model`` once per weights (cached under ``$IRV2_HOME/engines``), following the
  network's weights: changed weights are converted again at the next call;
- that same cached file opened without the network (``path=``, what ``irv2.load`` does once the file is
  prepared): no torch is imported until someone asks for ``module.model``, which ``attach`` then follows;
- a file written by ``irv2 export`` (``exported=True``), which has the TF-Hub interface itself.

The converted graphs take numpy batches NCHW in [-1, 1]; exported ones take the module's own input, NHWC in
[0, 1]. ``run_images`` takes the module's input either way and gives numpy, without torch. A subclass says
which precisions it runs, how it opens a file (``_open``), converts (``_convert``) and runs a batch (``_run``).
Nothing here imports torch at import time.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..disk_full import ROOM_ELSEWHERE, on_disk_full, size_text
from ..extras import require_extra
from .calibration import check_calibration, images_sha256
from .catalog import EngineSpec, spec_of
from .io_names import FEATURES, LOGITS
from .precision import Precision

if TYPE_CHECKING:
    import torch

    from ..model import InceptionResNetV2


def on_cache_full(path: Path, needed: int | None = None) -> contextlib.AbstractContextManager[None]:
    """Around a conversion to the cached file or folder ``path``: a full disk becomes a DiskFullError saying
    that nothing half-written is kept, how much room the conversion needs (``needed`` bytes, when known) and
    that ``IRV2_HOME`` can point elsewhere."""
    room = f"free about {size_text(needed)}" if needed else "free some space"
    return on_disk_full(
        path,
        kept="nothing of this conversion (its unfinished files were deleted)",
        resume=f"{room} in {path.parent}, {ROOM_ELSEWHERE}, and run it again: the engine is converted then",
    )


def float32_size(model: InceptionResNetV2) -> int:
    """Bytes of ``model``'s parameters in float32: about what a float32 engine file or an export holds (with
    BatchNorm folded into the convolutions a little less, with the graph and buffers besides a little more)."""
    return 4 * sum(parameter.numel() for parameter in model.parameters())


class RuntimeEngine:
    """The inference path of an ``irv2.Module`` through an external runtime (CPU).

    Args:
        model: the plain network (its current weights are followed; it is read, never changed), or None for an
            engine that runs ``path`` alone.
        precision: one of the subclass's ``dtypes``.
        calibration: for int8, images ``[N, H, W, 3]`` in [0, 1] whose activation ranges fix the quantization
            (32-128 typical images of the task); ignored otherwise.
        image_size: the module's input size (the calibration images must have it).
        path: the file (or folder) to run when ``model`` is None.
        num_classes: the classifier's width when ``model`` is None (0: features only).
        exported: ``path`` was written by ``irv2 export`` (input ``images`` NHWC in [0, 1]).
        calibration_sha256: the int8 calibration set's digest when ``path`` was quantized on it.
    """

    runtime: str  # for messages: "ONNX Runtime"

    @classmethod
    def spec(cls) -> EngineSpec:
        """This engine's catalog record: its name, extra, dtypes and library."""
        return spec_of(cls)

    @property
    def name(self) -> str:
        return self.spec().name

    @property
    def extra(self) -> str:
        return self.spec().extra  # type: ignore[return-value]  # every runtime engine's record names one

    @property
    def dtypes(self) -> tuple[str, ...]:
        return self.spec().dtypes

    @classmethod
    def runtime_version(cls) -> str:
        """The version of the library that runs the engine's files, read without importing it."""
        from importlib import metadata

        return metadata.version(cls.spec().library)  # type: ignore[arg-type]  # a runtime engine's has one

    @classmethod
    def from_catalog(
        cls, model: InceptionResNetV2, precision: Precision, *, image_size: tuple[int, int], calibration, **options
    ) -> RuntimeEngine:
        """The engine as its catalog record builds it (:meth:`place` then converts its file, once)."""
        return cls(model, precision, calibration, image_size=image_size, **options)

    def __init__(
        self,
        model: InceptionResNetV2 | None,
        precision: Precision,
        calibration: np.ndarray | None = None,
        *,
        image_size: tuple[int, int] = (299, 299),
        path: Path | None = None,
        num_classes: int | None = None,
        exported: bool = False,
        calibration_sha256: str | None = None,
    ) -> None:
        require_extra(self.extra, f"the {self.runtime} engine")
        self._require(precision)
        if precision.name not in self.dtypes:
            raise ValueError(f"{self.runtime} runs {' or '.join(self.dtypes)}, not {precision.name}")
        if precision.name == "int8" and model is not None:
            calibration = check_calibration(calibration, tuple(image_size))
        self.model = model
        self.precision = precision
        self.calibration = calibration
        # What the quantization was calibrated on, for records that must tell runs apart (batch jobs).
        self.calibration_sha256 = calibration_sha256
        if precision.name == "int8" and calibration is not None:
            self.calibration_sha256 = images_sha256(calibration)
        self.image_size = tuple(image_size)
        self.path = path
        self.exported = exported
        self.num_classes = model.num_classes if model is not None else int(num_classes or 0)
        self._opened: Any = None  # the runtime's loaded model
        self._built_for: int | None = None  # the network's fingerprint ``_opened`` was made from

    def _require(self, precision: Precision) -> None:
        """Raise MissingDependencyError for a package that ``precision`` needs beyond the extra's (none here)."""

    # -- the file -------------------------------------------------------------------------------------------
    def place(self, device: Any, *, fold: bool = True) -> None:
        """Keep the model in float32 on ``device`` (the runtime's model is converted from it) and build now,
        once, so the first call is as fast as the rest."""
        import torch

        self.model.to(device=device, dtype=torch.float32).eval()
        self.build()

    def build(self) -> Path:
        """Convert (and quantize) now if not cached yet, and open it; returns the cached file or folder."""
        self.opened  # noqa: B018 (the property builds)
        return self.path

    def attach(self, model: InceptionResNetV2) -> None:
        """Follow ``model`` from now on: the file this engine runs was made from its current weights."""
        from .fingerprint import model_fingerprint

        self.model = model
        self._built_for = model_fingerprint(model) if self._opened is not None else None

    @property
    def opened(self) -> Any:
        """The runtime's model for the network's current weights (converted or re-opened when they change), or
        for ``path`` when there is no network."""
        if self.model is not None and not self.exported:
            from .fingerprint import model_fingerprint

            fingerprint = model_fingerprint(self.model)
            if self._opened is None or self._built_for != fingerprint:
                self.path = self._convert(self.model)
                self._opened = self._open(self.path)
                self._built_for = fingerprint
        elif self._opened is None:
            self._opened = self._open(self.path)
        return self._opened

    def _convert(self, model: InceptionResNetV2) -> Path:
        """The cached file for ``model``'s weights, converted first if missing."""
        raise NotImplementedError

    def _open(self, path: Path) -> Any:
        raise NotImplementedError

    # -- running -----------------------------------------------------------------------------------------
    @property
    def input_name(self) -> str:
        return "images" if self.exported else "x"

    def output_name(self, pre_logits: bool) -> str:
        return FEATURES if pre_logits or not self.num_classes else LOGITS

    def run_images(self, images: np.ndarray, *, pre_logits: bool = False) -> np.ndarray:
        """``images`` float32 ``[B, H, W, 3]`` in [0, 1] → logits, or the 1536 features if ``pre_logits``
        (float32 numpy). No torch: the scaling and layout change run in numpy, the same float32 operations as
        the PyTorch engines' ``2 * x - 1``, so the same logits bit for bit."""
        (out,) = self._run(self._batch(images), (self.output_name(pre_logits),))
        return out

    def run_outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """``{"logits": [B, C], "features": [B, 1536]}`` (``features`` alone without a classifier) of ``images``
        ``[B, H, W, 3]`` in [0, 1], from one run."""
        names = (LOGITS, FEATURES) if self.num_classes else (FEATURES,)
        return dict(zip(names, self._run(self._batch(images), names), strict=True))

    def _batch(self, images: np.ndarray) -> np.ndarray:
        """What the graph takes: the images as they are (an export), else NCHW in [-1, 1] (a new buffer: the
        caller's images stay as they are)."""
        if self.exported:
            return np.ascontiguousarray(images, dtype=np.float32)
        batch = np.empty((images.shape[0], 3, *images.shape[1:3]), np.float32)
        np.multiply(images.transpose(0, 3, 1, 2), np.float32(2), out=batch)
        batch -= np.float32(1)
        return batch

    def forward(self, x: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        """``x`` NCHW in [-1, 1] → logits, or the 1536 features if ``pre_logits`` (float32, on ``x``'s device)."""
        import torch

        array = x.detach().to(device="cpu", dtype=torch.float32)
        if self.exported:  # the exported graph scales [0, 1] itself
            batch = ((array.permute(0, 2, 3, 1) + 1.0) / 2.0).contiguous().numpy()
        else:
            batch = array.contiguous().numpy()
        (out,) = self._run(batch, (self.output_name(pre_logits),))
        return torch.from_numpy(out).to(x.device)

    def forward_images(self, images: torch.Tensor, *, pre_logits: bool = False) -> torch.Tensor:
        """``images`` NCHW (or its NHWC view) in [0, 1] → as ``forward``.

        The scaling and the layout change run in numpy on the calling thread. Done in PyTorch, they would wake
        its OpenMP threads, which spin for a while after each operation, on the cores the runtime needs
        (docs/performance.md measures what that cost at batch 1)."""
        import torch

        array = images.detach().to(device="cpu", dtype=torch.float32).permute(0, 2, 3, 1).numpy()
        return torch.from_numpy(self.run_images(array, pre_logits=pre_logits)).to(images.device)

    def _run(self, batch: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
        """The outputs ``names`` of the graph on ``batch`` (what ``_batch`` made), float32."""
        raise NotImplementedError


def runtime_threads() -> int:
    """The threads a runtime should use: PyTorch's count where PyTorch is loaded (the two share the cores), else
    0, the runtime's own default (one per physical core)."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else 0
