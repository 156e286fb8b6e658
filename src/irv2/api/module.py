"""``irv2.Module``: the TF-Hub image module interface over the PyTorch network.

Mirrors TF-Hub's common image signatures: float images ``[B, H, W, 3]`` with values in [0, 1], channel
last, go in; ``image_classification`` gives logits ``[B, num_classes]``, ``image_feature_vector`` the
1536-d global average of ``Conv2d_7b_1x1``. The [0, 1] → [-1, 1] mapping the TF-Hub module does
internally (``2 * x - 1``) happens here, so ``module.model`` stays the plain TF-Slim network.

Nothing here imports torch at import time. A module whose engine runs from an ONNX Runtime or OpenVINO file
answers numpy calls without it; ``module.model``, tensor calls, end points, ``device``/``dtype`` and ``to``
import torch (and build the network) on first use.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.precision import Precision, resolve_precision
from ..errors import InputError, OptionError
from ..extras import require_torch
from ..model.names import BASE_ENDPOINTS, MIN_INPUT_SIZE
from ..preprocessing import DEFAULT_MAX_PIXELS, Preprocessing
from .declared_outputs import signature_output_info
from .outputs import SignatureOutputs
from .signatures import (
    CLASSIFICATION,
    FEATURE_VECTOR,
    SIGNATURES,
    TensorInfo,
    endpoint_key,
    endpoint_names,
    input_info,
    is_default,
    output_info,
    resolve_endpoints,
)

if TYPE_CHECKING:
    import torch

    from ..model import InceptionResNetV2


class ModuleInfo:
    """What the weights are and how to feed them; saved as ``irv2.json`` by ``irv2.save``.

    Attributes:
        num_classes: width of the classifier (1001 with "background" at 0 for the TF-Hub weights; 0 for a
            feature-vector module).
        labels: a name per class, or None.
        default_signature: ``image_classification`` or ``image_feature_vector``.
        preprocessing: the :class:`~irv2.preprocessing.Preprocessing` the weights expect, image size included;
            ``image_size`` reads it. A mapping (as ``irv2.json`` holds it) and ``image_size=`` are accepted.
        provenance: where the weights came from (source, format, checksums, fine-tuning) and, for weights read
            from a TF-Hub module, what its file declares each signature to output (``signature_outputs``, which
            the info dicts follow).
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
        model: the ``torch.nn.Module`` (NCHW input in [-1, 1], logits out), to fine-tune, save or export. A
            module whose engine runs from a prepared ONNX Runtime or OpenVINO file builds it on first use
            (importing torch then); one loaded from an exported file has none.
        info: classes, labels, image size, preprocessing and provenance of the weights.
        engine: the inference path, kept in step with ``model``: ``irv2.engine.InferenceEngine`` (a fused
            copy of ``model``, BatchNorm folded, kernels fused, channels-last, in the module's precision),
            ``TorchScriptEngine`` (that copy traced for oneDNN Graph), ``OnnxRuntimeEngine`` or
            ``OpenVinoEngine``.
    """

    def __init__(
        self,
        model: InceptionResNetV2 | None,
        info: ModuleInfo,
        engine: Any = None,
        *,
        model_loader: Callable[[], InceptionResNetV2] | None = None,
        weights_sha256: str | None = None,
    ) -> None:
        """``model``, or None with ``model_loader`` (builds it on first use) or with neither (an exported file:
        no network to give). ``weights_sha256``: the weights' digest when known without the network."""
        self._model = model
        self._model_loader = model_loader
        self.info = info
        if engine is None:
            from ..engine import InferenceEngine

            engine = InferenceEngine(self.model, _precision_of(self.model))
        self.engine = engine
        self._weights_digest: tuple[int, str] | None = None
        self._known_digest = weights_sha256

    @property
    def model(self) -> InceptionResNetV2:
        """The plain PyTorch network; built on first use when the module runs from a prepared engine file."""
        if self._model is None:
            if self._model_loader is None:
                source = self.info.provenance.get("loaded_from", "an exported file")
                raise OptionError(
                    f"{source}: this module was loaded from an exported {self.engine_name} file, which holds the "
                    "inference graph only; for the PyTorch network (fine-tuning, end points, export, explain) "
                    "load the original weights with irv2.load"
                )
            require_torch("the PyTorch network (module.model)")
            model = self._model_loader()
            attach = getattr(self.engine, "attach", None)
            if attach is not None:
                attach(model)  # the engine follows the network's weights from now on
            self._model = model
        return self._model

    @model.setter
    def model(self, model: InceptionResNetV2) -> None:
        self._model = model

    @property
    def has_model(self) -> bool:
        """Whether the PyTorch network is built (False for a module answering from an engine file alone)."""
        return self._model is not None

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
        """Where the network runs, as a ``torch.device`` (imports torch; :attr:`device_type` does not)."""
        if self._model is None:
            require_torch("module.device")
            import torch

            return torch.device("cpu")  # engine files run on the CPU
        return next(self._model.parameters()).device

    @property
    def device_type(self) -> str:
        """``cpu``, ``cuda`` or ``mps``, without importing torch."""
        return "cpu" if self._model is None else self.device.type

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype of the network's tensors (float32 for an engine file's network)."""
        return self.precision_dtype if self._model is None else next(self._model.parameters()).dtype

    @property
    def precision_dtype(self) -> torch.dtype:
        import torch

        return torch.float32

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
        if self._model is None and self._known_digest is not None:
            return self._known_digest
        from ..engine.fingerprint import model_fingerprint, weights_sha256

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
        """Move or cast the network (as ``nn.Module.to``); the fast path follows at the next call. OptionError
        (the network left as it was) for bfloat16 on a CPU without bfloat16 instructions."""
        import torch

        from ..engine.precision import NO_BFLOAT16, cpu_has_fast_bfloat16

        # nn.Module.to's own reading of its arguments, so the refusal comes before any weight is rounded.
        device, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        device = device if device is not None else self.device
        if device.type == "cpu" and dtype == torch.bfloat16 and not cpu_has_fast_bfloat16():
            raise OptionError(NO_BFLOAT16)
        self.model.to(*args, **kwargs)
        if self.engine.precision.dtype != self.dtype:
            self.engine.precision = _precision_of(self.model)
        return self

    # -- calling -------------------------------------------------------------------------------------
    def __call__(
        self,
        images: np.ndarray | torch.Tensor | Mapping[str, Any],
        signature: str | None = None,
        as_dict: bool = False,
    ) -> Any:
        """Run a signature on ``images`` ``[B, H, W, 3]``, float, values in [0, 1], as TF-Hub's
        ``module(images)`` or ``module(dict(images=images), signature=..., as_dict=True)``.

        Returns logits ``[B, num_classes]`` (``image_classification``) or features ``[B, 1536]``
        (``image_feature_vector``). With ``as_dict``, the signature's output dict: ``{"default": output}`` for the
        default signature (``signature`` None or ``"default"``), as TF-Hub's default signature has that output
        alone; for a named signature, ``default`` and every TF-Slim end point of the network
        (:attr:`endpoint_names` lists them), keyed ``InceptionResnetV2/<name>``, NHWC.

        Outside training, a named signature's dict costs what TensorFlow's fetch does: ``default`` comes from the
        module's engine at once, and the end points are computed when one is first read, in one pass shared by
        all of them, from the images and weights of that moment. In the train graph, or for tensors with
        grad enabled, everything is computed at once in one pass. A numpy input gives numpy outputs computed
        without autograd; a tensor input gives tensors (differentiable when the caller has grad enabled, e.g.
        for fine-tuning). In train mode (``irv2.load(..., tags={"train"})``) the classification dict also holds
        ``AuxLogits`` (and, as before, ``aux_logits``), the auxiliary head TF-Slim trains with.
        """
        asked_default = is_default(signature)
        signature = self._resolve(signature)
        images = _images_of(images, signature, self.expected_image_size)
        if not as_dict or asked_default:
            output = self._output_of(images, signature)
            return {"default": output} if as_dict else output
        names = self.endpoint_names
        if self.training or (_is_tensor(images) and _grad_enabled()):
            outputs = self._run(images, signature, endpoints=names)
            if "AuxLogits" in outputs and signature == CLASSIFICATION:
                outputs["aux_logits"] = outputs["AuxLogits"]  # its name before the end points came
            return {key if key in ("default", "aux_logits") else endpoint_key(key): v for key, v in outputs.items()}
        held = _held(images, self.expected_image_size)  # what the end points see, whatever the caller does next

        def endpoint_values() -> dict[str, Any]:
            outputs = self._run(held, signature, endpoints=names, default=False)
            return {endpoint_key(name): outputs[name] for name in names}

        return SignatureOutputs(self._output_of(images, signature), tuple(map(endpoint_key, names)), endpoint_values)

    def _output_of(self, images: Any, signature: str) -> Any:
        """The signature's one output: on the engine, as numpy where the engine runs numpy."""
        if self._runs_on_numpy(images):
            array = _checked_array(images, self.expected_image_size)
            return self.engine.run_images(array, pre_logits=signature == FEATURE_VECTOR)
        return self._run(images, signature)

    def endpoints(
        self,
        images: np.ndarray | torch.Tensor | Mapping[str, Any],
        names: str | Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """The TF-Slim end points ``names`` (``"Mixed_6a"`` or ``"InceptionResnetV2/Mixed_6a"``; all of
        :attr:`endpoint_names` if None) of ``images``, keyed ``InceptionResnetV2/<name>``, NHWC; the network runs
        only as far as the last one asked for. Numpy in, numpy out; a tensor in, tensors out."""
        wanted = resolve_endpoints(names, self.endpoint_names)
        images = _images_of(images, self.info.default_signature, self.expected_image_size)
        outputs = self._run(images, self.info.default_signature, endpoints=wanted, default=False)
        return {endpoint_key(name): outputs[name] for name in wanted}

    def _runs_on_numpy(self, images: Any) -> bool:
        """Whether this call can go to the engine as numpy, without torch: an engine that runs numpy (ONNX
        Runtime, OpenVINO), an input that is not a tensor, and the inference graph."""
        if not hasattr(self.engine, "run_images") or _is_tensor(images):
            return False
        return self._model is None or not self._model.training

    @property
    def endpoint_names(self) -> tuple[str, ...]:
        """The end points this module gives, in network order: the base network's, ``global_pool``,
        ``PreLogitsFlatten``, then ``Logits``, ``Predictions`` with a classifier and ``AuxLogits`` in the train
        graph."""
        model = self._model  # a network not built yet is in the inference graph: no AuxLogits
        aux = model is not None and model.training and self.num_classes > 0 and model.aux_logits is not None
        return endpoint_names(classifier=self.num_classes > 0, aux=aux)

    def _run(
        self,
        images: np.ndarray | torch.Tensor,
        signature: str,
        *,
        endpoints: Sequence[str] = (),
        default: bool = True,
    ) -> Any:
        """``default`` alone (no ``endpoints``) or a dict of ``default`` and the short-named ``endpoints``."""
        require_torch("end points and calls with tensors" if endpoints else "a call with tensors or in the train graph")
        import torch

        from_numpy = not isinstance(images, torch.Tensor)
        x = _to_nchw(images, self.device, self.dtype, self.expected_image_size)
        pre_logits = signature == FEATURE_VECTOR
        # inference_mode(False) would switch off a caller's own inference mode: leave tensors' mode alone.
        with torch.inference_mode() if from_numpy else contextlib.nullcontext():
            # The fused network has no autograd: it serves every call made without gradients (numpy input,
            # or a tensor under torch.inference_mode / no_grad); the plain network serves the rest.
            inference = not torch.is_grad_enabled() and not self.model.training
            if not endpoints:
                # Engines take the [0, 1] images and scale them their own way (ONNX Runtime's in numpy).
                if inference:
                    return _output(self.engine.forward_images(x, pre_logits=pre_logits), from_numpy)
                features = self.model.forward_features(2.0 * x - 1.0)
                return _output(self.model.forward_head(features, pre_logits=pre_logits), from_numpy)
            if inference:
                outputs = self._inference_endpoints(x, endpoints, pre_logits, default)
            else:
                outputs = _network_endpoints(self.model, 2.0 * x - 1.0, endpoints, pre_logits, default)
        return {name: _output(value, from_numpy) for name, value in outputs.items()}

    def _inference_endpoints(
        self, x: torch.Tensor, names: Sequence[str], pre_logits: bool, default: bool
    ) -> dict[str, torch.Tensor]:
        """End points on the engine when it can give them (the fused and plain torch engines), else on the plain
        network, never a second copy of it; ``default`` from the module's own engine either way, so that it is
        what ``module(images)`` gives."""
        if not hasattr(self.engine, "forward_endpoints"):  # ONNX Runtime, OpenVINO, TorchScript
            outputs = _network_endpoints(self.model, 2.0 * x - 1.0, names, pre_logits, default=False)
            if default:
                outputs["default"] = self.engine.forward_images(x, pre_logits=pre_logits)
            return outputs
        engine = self.engine
        head = default or any(name not in BASE_ENDPOINTS for name in names)
        base = [name for name in BASE_ENDPOINTS if name in names or (head and name == "Conv2d_7b_1x1")]
        points = engine.forward_endpoints((2.0 * x - 1.0).to(engine.precision.dtype), base) if base else {}
        outputs = {name: points[name] for name in names if name in BASE_ENDPOINTS}
        if head:
            network = engine.network
            pooled = network.forward_head(points["Conv2d_7b_1x1"], pre_logits=True)
            logits = network.forward_head(points["Conv2d_7b_1x1"]) if self.num_classes else None
            outputs.update(_head_endpoints(pooled, pooled, logits, None, names))
            if default:
                outputs["default"] = pooled if pre_logits else logits
        return outputs

    # -- the hub.Module surface ----------------------------------------------------------------------
    def get_signature_names(self) -> list[str]:
        """The signatures, as ``hub.Module.get_signature_names()``: ``default`` and the named ones."""
        return ["default", *self.signatures]

    def get_input_info_dict(self, signature: str | None = None) -> dict[str, TensorInfo]:
        """``{"images": float32 [None, height, width, 3]}``, as ``hub.Module.get_input_info_dict``."""
        self._resolve(signature)
        return input_info(self.expected_image_size)

    def get_output_info_dict(self, signature: str | None = None) -> dict[str, TensorInfo]:
        """The signature's outputs with their dtypes and shapes, as ``hub.Module.get_output_info_dict``: ``default``
        alone for the default signature (None or ``"default"``), ``default`` and every end point for a named one.

        Weights read from a TF-Hub module whose file declares the signature's outputs (in the graph of
        :attr:`tags`) list what the file declares instead, with the file's shapes, except keys the call does not
        give; ``info.provenance["signature_outputs"]`` keeps the file's full declaration
        (``irv2.api.declared_outputs`` has the rules)."""
        names = () if is_default(signature) else self.endpoint_names
        computed = output_info(self._resolve(signature), self.expected_image_size, self.num_classes, names)
        return signature_output_info(computed, self.info.provenance, signature, self.tags)

    @property
    def variable_map(self) -> dict[str, torch.Tensor]:
        """TF-Slim variable names (``InceptionResnetV2/Conv2d_1a_3x3/weights``...) mapped to the network's
        tensors, as ``hub.Module.variable_map`` maps them to variables. The tensors are the network's own, in
        PyTorch's layout (a conv's ``weights`` is OIHW where TF's is HWIO); changing one changes the module."""
        from ..weights.slim_names import tensor_map

        state = self.model.state_dict(keep_vars=True)
        return {tf_name: state[key] for tf_name, (key, _) in tensor_map().items() if key in state}

    @property
    def training(self) -> bool:
        """True for the ``{"train"}`` graph: BatchNorm on batch statistics, dropout on."""
        return self._model is not None and self._model.training

    @property
    def tags(self) -> set[str]:
        """The graph in use, by its TF-Hub tag set: ``{"train"}`` for the training graph, ``set()`` for inference."""
        return {"train"} if self.training else set()

    def train(self, mode: bool = True) -> Module:
        """Switch to the ``{"train"}`` graph (``mode`` True) or the inference graph (False), as ``nn.Module.train``
        does for a network; returns the module. The train graph keeps the decay and dropout
        ``irv2.finetune.set_train_mode`` last gave the network, else TF-Hub's defaults (as
        ``irv2.load(..., tags={"train"})``)."""
        from .train_graph import enter_train_graph

        if mode:
            enter_train_graph(self.model)
        else:
            self.model.eval()
        return self

    def eval(self) -> Module:
        """Switch to the inference graph: BatchNorm on its moving averages, no dropout (``train(False)``)."""
        return self.train(False)

    def _resolve(self, signature: str | None) -> str:
        if is_default(signature):
            return self.info.default_signature
        if signature not in self.signatures:
            raise OptionError(f"signature {signature!r}: no such signature; this module has {list(self.signatures)}")
        return signature

    def __repr__(self) -> str:
        source = self.info.provenance.get("source", "?")
        return (
            f"irv2.Module(num_classes={self.num_classes}, signatures={list(self.signatures)}, "
            f"device={self.device_type}, precision={self.precision!r}, engine={type(self.engine).__name__}, "
            f"source={source!r})"
        )


def _precision_of(model: InceptionResNetV2) -> Precision:
    """The precision matching the network's current dtype and device (float32 math, never TF32)."""

    parameter = next(model.parameters())
    try:
        return resolve_precision(parameter.dtype, parameter.device)
    except ValueError:  # e.g. a float16 network moved to the CPU by hand: run it as it is
        return Precision(str(parameter.dtype).removeprefix("torch."), parameter.dtype)


def _images_of(images: Any, signature: str, size: tuple[int, int]) -> Any:
    """The ``images`` of a call: the argument itself, or its ``"images"`` entry when it is a dict (TF-Hub's
    ``module(dict(images=...))``)."""
    if not isinstance(images, Mapping):
        return images
    if set(images) != {"images"}:
        keys = sorted(str(key) for key in images)
        raise InputError(
            f"images: signature {signature} takes one input, {{'images': float32 [batch, {size[0]}, {size[1]}, 3] "
            f"with values in [0, 1]}}; the dict has keys {keys}"
        )
    return images["images"]


def _expected(size: tuple[int, int]) -> str:
    return f"float32 [batch, {size[0]}, {size[1]}, 3] with values in [0, 1]"


def _checked_array(images: Any, size: tuple[int, int], *, cast: bool = True) -> np.ndarray:
    """``images`` (an array, or what converts to one) as NHWC numpy, checked as :func:`_check_shape` says;
    float32 and contiguous with ``cast`` (no copy when it already is)."""
    try:
        array = np.asarray(images)
    except (TypeError, ValueError) as exc:  # e.g. ragged nested lists
        raise InputError(f"images: expected {_expected(size)}, got a {type(images).__name__} ({exc})") from None
    if array.dtype.kind not in "fiub":
        raise InputError(
            f"images: expected {_expected(size)}, got a {type(images).__name__} that is not numbers "
            f"(numpy dtype {array.dtype}): pass an array or tensor of pixels"
        )
    _check_shape(tuple(array.shape), array.dtype.kind == "f", str(array.dtype), size)
    if array.size and array.dtype.kind == "f" and float(array.max()) > 2.0:
        warnings.warn(
            "image values above 2 look like 0-255 pixels; the module expects [0, 1]", RuntimeWarning, stacklevel=4
        )
    return np.ascontiguousarray(array, dtype=np.float32) if cast else array


def _check_shape(shape: tuple[int, ...], floating: bool, dtype: str, size: tuple[int, int]) -> None:
    """InputError naming what is wrong with a batch of ``shape`` and ``dtype``, and the fix."""
    expected = _expected(size)
    if len(shape) == 3 and shape[-1] == 3:
        raise InputError(f"images: expected {expected}, got one image {shape}: add a batch axis, images[None]")
    if len(shape) == 4 and shape[1] == 3 and shape[-1] != 3:
        raise InputError(
            f"images: expected {expected} (channels last, as TF-Hub), got {shape}, channels first: "
            "move them last (numpy: images.transpose(0, 2, 3, 1); torch: images.permute(0, 2, 3, 1))"
        )
    if len(shape) != 4 or shape[-1] != 3:
        raise InputError(f"images: expected {expected} (RGB, channels last), got shape {shape}")
    if not floating:
        raise InputError(f"images: expected {expected}, got {dtype.removeprefix('torch.')}: divide by 255")
    if min(shape[1:3]) < MIN_INPUT_SIZE:
        raise InputError(
            f"images: expected {expected}, got {shape}: images must be at least {MIN_INPUT_SIZE} x {MIN_INPUT_SIZE}"
        )


def _grad_enabled() -> bool:
    import torch  # a caller holding a tensor has imported it

    return torch.is_grad_enabled()


def _held(images: Any, size: tuple[int, int]) -> Any:
    """A copy of a call's images for end points computed later: the caller may reuse its buffer meanwhile."""
    if _is_tensor(images):
        return images.detach().clone()
    return _checked_array(images, size).copy()


def _is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor, without importing torch (a caller holding one has imported it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _to_nchw(images: Any, device: torch.device, dtype: torch.dtype, size: tuple[int, int] = (299, 299)) -> torch.Tensor:
    import torch

    if isinstance(images, torch.Tensor):
        x = images
        _check_shape(tuple(x.shape), x.is_floating_point(), str(x.dtype), size)
        if x.numel() and _largest(x) > 2.0:
            warnings.warn(
                "image values above 2 look like 0-255 pixels; the module expects [0, 1]", RuntimeWarning, stacklevel=4
            )
    else:
        array = _checked_array(images, size, cast=False)
        # torch refuses to share read-only buffers (e.g. a numpy view of bytes); copy only those.
        x = torch.from_numpy(array if array.flags.writeable else array.copy())
    # A pinned (page-locked) batch can be copied to a GPU while the host goes on decoding the next one.
    return x.to(device=device, dtype=dtype, non_blocking=x.is_pinned()).permute(0, 3, 1, 2)


def _network_endpoints(
    model: InceptionResNetV2, x: torch.Tensor, names: Sequence[str], pre_logits: bool, default: bool
) -> dict[str, torch.Tensor]:
    """End points on the plain network, with autograd and in its current mode (dropout and batch statistics in
    the train graph)."""
    head = default or any(name not in BASE_ENDPOINTS for name in names)
    base = [name for name in BASE_ENDPOINTS if name in names or (head and name == "Conv2d_7b_1x1")]
    if head and "AuxLogits" in names:
        base = sorted({*base, "PreAuxLogits"}, key=BASE_ENDPOINTS.index)
    points = model.forward_endpoints(x, base)
    outputs = {name: points[name] for name in base if name in names}
    if head:
        pooled = points["Conv2d_7b_1x1"].mean(dim=(2, 3))
        dropped = model.head_drop(pooled)
        logits = model.classif(dropped) if model.num_classes else None
        aux = model.aux_logits(points["PreAuxLogits"]) if "AuxLogits" in names else None
        outputs.update(_head_endpoints(pooled, dropped, logits, aux, names))
        if default:
            # The feature vector is never dropped out, not even in the train graph (TF-Hub's rule).
            outputs["default"] = pooled if pre_logits else logits
    return outputs


def _head_endpoints(
    pooled: torch.Tensor,
    dropped: torch.Tensor,
    logits: torch.Tensor | None,
    aux: torch.Tensor | None,
    names: Sequence[str],
) -> dict[str, torch.Tensor]:
    """TF-Slim's end points after the base network, those of ``names`` that the head computes."""
    values = {"global_pool": lambda: pooled[:, :, None, None], "PreLogitsFlatten": lambda: dropped}
    import torch

    if logits is not None:
        values["Logits"] = lambda: logits
        values["Predictions"] = lambda: torch.softmax(logits.float(), dim=1)
    if aux is not None:
        values["AuxLogits"] = lambda: aux
    return {name: values[name]() for name in names if name in values}


def _output(value: torch.Tensor, to_numpy: bool) -> Any:
    """An output as the caller gets it: NHWC if spatial, and a float32 numpy array for a numpy caller."""
    if value.ndim == 4:
        value = value.permute(0, 2, 3, 1)
    return value.float().cpu().numpy() if to_numpy else value


def _largest(x: torch.Tensor) -> float:
    import torch

    """The largest value of ``x``; through numpy on the CPU, on this thread. A PyTorch reduction would wake its
    OpenMP threads, which then spin for a while, beside ONNX Runtime's threads when that engine runs next
    (docs/performance.md measures the cost at batch 1)."""
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        return float(x.detach().numpy().max())
    return float(x.detach().amax())


def get_expected_image_size(module: Module) -> tuple[int, int]:
    """``(height, width)`` the module expects, like ``hub.get_expected_image_size``."""
    return module.expected_image_size
