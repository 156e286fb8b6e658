"""``irv2.Module``: the TF-Hub image module interface over the PyTorch network.

Mirrors TF-Hub's common image signatures: float images ``[B, H, W, 3]`` with values in [0, 1], channel
last, go in; ``image_classification`` gives logits ``[B, num_classes]``, ``image_feature_vector`` the
1536-d global average of ``Conv2d_7b_1x1``. The [0, 1] → [-1, 1] mapping the TF-Hub module does
internally (``2 * x - 1``) happens here, so ``module.model`` stays the plain TF-Slim network.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..engine import InferenceEngine, resolve_precision
from ..engine.fingerprint import model_fingerprint, weights_sha256
from ..engine.precision import Precision
from ..model import MIN_INPUT_SIZE, InceptionResNetV2
from ..preprocessing import DEFAULT_MAX_PIXELS, Preprocessing

CLASSIFICATION = "image_classification"
FEATURE_VECTOR = "image_feature_vector"
SIGNATURES = (CLASSIFICATION, FEATURE_VECTOR)


class ModuleInfo:
    """What the weights are and how to feed them; saved as ``irv2.json`` by ``irv2.save``.

    Attributes:
        num_classes: width of the classifier (1001 with "background" at 0 for the TF-Hub weights; 0 for a
            feature-vector module).
        labels: a name per class, or None.
        default_signature: ``image_classification`` or ``image_feature_vector``.
        preprocessing: the :class:`~irv2.preprocessing.Preprocessing` the weights expect, image size included;
            ``image_size`` reads it. A mapping (as ``irv2.json`` holds it) and ``image_size=`` are accepted.
        provenance: where the weights came from (source, format, checksums, fine-tuning).
    """

    def __init__(
        self,
        num_classes: int,
        labels: list[str] | None,
        image_size: tuple[int, int] | int | None = None,
        default_signature: str = CLASSIFICATION,
        preprocessing: Preprocessing | Mapping[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        self.num_classes = num_classes
        self.labels = labels
        self.default_signature = default_signature
        if not isinstance(preprocessing, Preprocessing):
            preprocessing = Preprocessing.from_dict(preprocessing, image_size=image_size)
        elif image_size is not None:
            preprocessing = preprocessing.with_size(image_size)
        self.preprocessing = preprocessing
        self.provenance = dict(provenance or {})

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` of the input the weights expect (from :attr:`preprocessing`)."""
        return self.preprocessing.image_size

    def __repr__(self) -> str:
        return (
            f"ModuleInfo(num_classes={self.num_classes}, default_signature={self.default_signature!r}, "
            f"preprocessing={self.preprocessing!r})"
        )


class Module:
    """A loaded Inception-ResNet-v2 with TF-Hub's calling convention. Create it with ``irv2.load``.

    Attributes:
        model: the ``torch.nn.Module`` (NCHW input in [-1, 1], logits out), to fine-tune, save or export.
        info: classes, labels, image size, preprocessing and provenance of the weights.
        engine: the inference path, kept in step with ``model``: ``irv2.engine.InferenceEngine`` (a fused
            copy of ``model``, BatchNorm folded, kernels fused, channels-last, in the module's precision),
            ``TorchScriptEngine`` (that copy traced for oneDNN Graph) or ``OnnxRuntimeEngine``.
    """

    def __init__(self, model: InceptionResNetV2, info: ModuleInfo, engine: Any = None) -> None:
        self.model = model
        self.info = info
        self.engine = engine or InferenceEngine(model, _precision_of(model))
        self._weights_digest: tuple[int, str] | None = None

    # -- properties mirroring hub.Module -----------------------------------------------------------
    @property
    def expected_image_size(self) -> tuple[int, int]:
        """``(height, width)`` the weights were trained at, as ``hub.get_expected_image_size`` gives."""
        return tuple(self.info.image_size)  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def labels(self) -> list[str] | None:
        return self.info.labels

    @property
    def signatures(self) -> tuple[str, ...]:
        return SIGNATURES if self.num_classes else (FEATURE_VECTOR,)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def precision(self) -> str:
        """The number format inference runs in: ``float32`` (exact), ``tf32``, ``bfloat16``, ``float16`` or
        ``int8``."""
        return self.engine.precision.name

    @property
    def engine_name(self) -> str:
        """The engine inference runs on, by its name in ``irv2.engine.ENGINES`` (``torch``, ``onnxruntime``...)."""
        return self.engine.name

    # -- preprocessing ------------------------------------------------------------------------------------
    @property
    def preprocessing(self) -> Preprocessing:
        """The recipe that turns an image into this module's input (recorded with the weights)."""
        return self.info.preprocessing

    def preprocess(self, image: Any, *, draft: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """``image`` (a path, bytes, a file object, a PIL image or an array ``[H, W, 3]``) as this module's
        input: float32 ``[H, W, 3]`` in [0, 1] at :attr:`expected_image_size`, made with the recipe the weights
        record (TF-Slim's central crop 0.875 and legacy bilinear resize). Add a batch axis with ``[None]``, or
        stack several. ``draft`` and ``max_pixels``: see :class:`~irv2.preprocessing.Preprocessing`."""
        return self.preprocessing(image, draft=draft, max_pixels=max_pixels)

    # -- identity ----------------------------------------------------------------------------------------
    def weights_sha256(self) -> str:
        """The sha256 of the network's weights (float32 values, in state-dict order): the same weights give the
        same digest whatever file or precision they were loaded from. Kept until the weights change."""
        fingerprint = model_fingerprint(self.model)
        if self._weights_digest is None or self._weights_digest[0] != fingerprint:
            self._weights_digest = (fingerprint, weights_sha256(self.model))
        return self._weights_digest[1]

    def run_settings(self) -> dict[str, Any]:
        """Every setting of this module that changes its outputs: the weights' digest, engine, precision, the
        int8 calibration set's digest and the preprocessing recipe (what batch jobs record to refuse a resume
        that would mix rows of two settings)."""
        return {
            "weights_sha256": self.weights_sha256(),
            "engine": self.engine_name,
            "dtype": self.precision,
            "calibration_sha256": getattr(self.engine, "calibration_sha256", None),
            "preprocessing": self.preprocessing.to_dict(),
        }

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move or cast the network (as ``nn.Module.to``); the fast path follows at the next call."""
        self.model.to(*args, **kwargs)
        if self.engine.precision.dtype != self.dtype:
            self.engine.precision = _precision_of(self.model)
        return self

    # -- calling -------------------------------------------------------------------------------------
    def __call__(
        self,
        images: np.ndarray | torch.Tensor,
        signature: str | None = None,
        as_dict: bool = False,
    ) -> Any:
        """Run a signature on ``images`` ``[B, H, W, 3]``, float, values in [0, 1].

        Returns logits ``[B, num_classes]`` (``image_classification``) or features ``[B, 1536]``
        (``image_feature_vector``); ``{"default": ...}`` when ``as_dict``. A numpy input gives a numpy
        output computed without autograd; a tensor input gives a tensor (differentiable when the
        caller has grad enabled, e.g. for fine-tuning). In train mode (``irv2.load(..., tags={"train"})``)
        the classification dict also holds ``"aux_logits"``, the auxiliary head TF-Slim trains with.
        """
        signature = self._resolve(signature)
        from_numpy = not isinstance(images, torch.Tensor)
        x = _to_nchw(images, self.device, self.dtype)
        outputs: dict[str, torch.Tensor] = {}
        # inference_mode(False) would switch off a caller's own inference mode: leave tensors' mode alone.
        with torch.inference_mode() if from_numpy else contextlib.nullcontext():
            # The fused network has no autograd: it serves every call made without gradients (numpy input,
            # or a tensor under torch.inference_mode / no_grad); the plain network serves the rest.
            pre_logits = signature == FEATURE_VECTOR
            # Engines take the [0, 1] images and scale them their own way (ONNX Runtime's in numpy).
            if not torch.is_grad_enabled() and not self.model.training:
                outputs["default"] = self.engine.forward_images(x, pre_logits=pre_logits)
            elif as_dict and not pre_logits and self.model.training and self.model.aux_logits is not None:
                outputs["default"], outputs["aux_logits"] = self.model.forward_with_aux(2.0 * x - 1.0)
            else:
                features = self.model.forward_features(2.0 * x - 1.0)
                outputs["default"] = self.model.forward_head(features, pre_logits=pre_logits)
        if from_numpy:
            outputs = {k: v.float().cpu().numpy() for k, v in outputs.items()}
        return outputs if as_dict else outputs["default"]

    @property
    def training(self) -> bool:
        """True for the ``{"train"}`` graph: BatchNorm on batch statistics, dropout on."""
        return self.model.training

    def _resolve(self, signature: str | None) -> str:
        if signature in (None, "default"):
            return self.info.default_signature
        if signature not in self.signatures:
            raise ValueError(f"unknown signature {signature!r}; this module has {list(self.signatures)}")
        return signature

    def __repr__(self) -> str:
        source = self.info.provenance.get("source", "?")
        return (
            f"irv2.Module(num_classes={self.num_classes}, signatures={list(self.signatures)}, "
            f"device={self.device}, precision={self.precision!r}, engine={type(self.engine).__name__}, "
            f"source={source!r})"
        )


def _precision_of(model: InceptionResNetV2) -> Precision:
    """The precision matching the network's current dtype and device (float32 math, never TF32)."""
    parameter = next(model.parameters())
    try:
        return resolve_precision(parameter.dtype, parameter.device)
    except ValueError:  # e.g. a float16 network moved to the CPU by hand: run it as it is
        return Precision(str(parameter.dtype).removeprefix("torch."), parameter.dtype)


def _to_nchw(images: np.ndarray | torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        x = images
    else:
        array = np.asarray(images)
        # torch refuses to share read-only buffers (e.g. a numpy view of bytes); copy only those.
        x = torch.from_numpy(array if array.flags.writeable else array.copy())
    if x.ndim == 3 and x.shape[-1] == 3:
        raise ValueError(f"expected a batch [B, H, W, 3], got one image {tuple(x.shape)}: pass images[None]")
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected RGB images [B, H, W, 3] (channel last, as TF-Hub), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected float images with values in [0, 1], got {x.dtype}: divide by 255 first")
    if min(x.shape[1:3]) < MIN_INPUT_SIZE:
        raise ValueError(f"images must be at least {MIN_INPUT_SIZE} x {MIN_INPUT_SIZE}, got {tuple(x.shape[1:3])}")
    if x.numel() and _largest(x) > 2.0:
        warnings.warn(
            "image values above 2 look like 0-255 pixels; the module expects [0, 1]", RuntimeWarning, stacklevel=3
        )
    # A pinned (page-locked) batch can be copied to a GPU while the host goes on decoding the next one.
    return x.to(device=device, dtype=dtype, non_blocking=x.is_pinned()).permute(0, 3, 1, 2)


def _largest(x: torch.Tensor) -> float:
    """The largest value of ``x``; through numpy on the CPU, on this thread. A PyTorch reduction would wake its
    OpenMP threads, which then spin for a while, beside ONNX Runtime's threads when that engine runs next
    (docs/performance.md measures the cost at batch 1)."""
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        return float(x.detach().numpy().max())
    return float(x.detach().amax())


def get_expected_image_size(module: Module) -> tuple[int, int]:
    """``(height, width)`` the module expects, like ``hub.get_expected_image_size``."""
    return module.expected_image_size
