"""TensorFlow 2 SavedModel: the network rebuilt from TF ops with the module's weights, in TF-Hub's reusable form.

No ONNX-to-TF converter is involved: each PyTorch layer is replayed as the TF op TF-Slim used (``conv2d`` with
the layer's own explicit padding, ``batch_normalization`` with eps 1e-3 and no gamma, VALID max pools, the
SAME average pool that ignores padding), in NHWC, with the weights as ``tf.Variable``s named as in the TF-Slim
checkpoint (``InceptionResnetV2/Conv2d_1a_3x3/weights`` ...). A faithful float32 port agrees with PyTorch to
about 1e-6; anything near 1e-4 is a bug, and ``export`` refuses it.

The saved object follows TF-Hub's "reusable SavedModel" API, so ``hub.KerasLayer(path)`` and
``tf.saved_model.load(path)`` both work:

* ``obj(images)`` (``__call__``): ``images`` float32 ``[B, H, W, 3]`` in [0, 1] at the module's size (any
  size with ``dynamic_size``) → logits ``[B, num_classes]`` (the features ``[B, 1536]`` for a feature-vector module);
* ``obj.variables``, ``obj.trainable_variables`` (convolution kernels, BatchNorm betas, biases, the classifier;
  the moving statistics are not trainable) and ``obj.regularization_losses`` (empty);
* signatures ``serving_default`` (``logits`` and ``features``), ``image_classification`` (``logits``) and
  ``image_feature_vector`` (``features``), each taking ``images``; a feature-vector module has no
  ``image_classification`` and serves ``features`` only;
* ``obj.labels_file``: an asset ``assets/labels.txt`` (one class name per line) when the module has labels;
  ``assets.extra/irv2.json`` holds the rest of the metadata.

There is no ``training`` argument: BatchNorm always uses the moving statistics (fine-tuning with frozen
BatchNorm, as TF-Hub advises for small data sets), and the classifier has no dropout.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..model import STAGES, InceptionResNetV2
from ..model.blocks import Block8, Block17, Block35, Mixed5b, Mixed6a, Mixed7a
from ..model.layers import ConvBnAct
from ..weights.slim_names import tensor_map
from .wrapper import FEATURES, INPUT_NAME, LOGITS

LABELS_FILE = "labels.txt"
METADATA_FILE = "irv2.json"  # under assets.extra/, which TensorFlow leaves to the user
SERVING_DEFAULT = "serving_default"
CLASSIFICATION = "image_classification"
FEATURE_VECTOR = "image_feature_vector"


def write_savedmodel(
    model: InceptionResNetV2,
    path: Path,
    *,
    image_size: tuple[int, int] | None,
    labels: list[str] | None,
    metadata_json: str,
) -> None:
    """Rebuild ``model`` (eval, float32, CPU) in TensorFlow and save it as a SavedModel folder at ``path``."""
    import tensorflow as tf

    network = _TFNetwork(tf, model)
    height, width = image_size or (None, None)  # None: any size
    spec = tf.TensorSpec([None, height, width, 3], tf.float32, name=INPUT_NAME)
    classifier = model.num_classes > 0

    # tf.Module would not do as the root: its `variables` and `trainable_variables` are computed properties,
    # and TF-Hub's API needs them stored as attributes so that the *restored* object has them too.
    root = tf.__internal__.tracking.AutoTrackable()
    root.variables = list(network.variables.values())
    root.trainable_variables = [v for v in root.variables if v.trainable]
    root.regularization_losses = []

    # Without autograph: the walk over the network is plain Python over a fixed structure, and autograph's
    # rewriting of its loops into TensorFlow control flow made saving take twice as long, for nothing.
    traced = tf.function(input_signature=[spec], autograph=False)

    # The network is traced once, in `forward`; the entry points below call it, so the SavedModel holds one
    # copy of the graph rather than four.
    @traced
    def forward(images):
        return network(images)

    @traced
    def call(images):
        logits, features = forward(images)
        return logits if classifier else features

    @traced
    def serving(images):
        logits, features = forward(images)
        return {LOGITS: logits, FEATURES: features} if classifier else {FEATURES: features}

    @traced
    def classification(images):
        return {LOGITS: forward(images)[0]}

    @traced
    def feature_vector(images):
        return {FEATURES: forward(images)[1]}

    root.__call__ = call
    signatures = {SERVING_DEFAULT: serving, FEATURE_VECTOR: feature_vector}
    if classifier:
        signatures[CLASSIFICATION] = classification
    with tempfile.TemporaryDirectory() as scratch:
        if labels:
            labels_path = Path(scratch) / LABELS_FILE
            labels_path.write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
            root.labels_file = tf.saved_model.Asset(str(labels_path))  # copied into assets/ by save
        tf.saved_model.save(root, str(path), signatures=signatures)
    extra = path / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / METADATA_FILE).write_text(metadata_json, encoding="utf-8")


def tf_serving_function(tf: Any, model: InceptionResNetV2, image_size: tuple[int, int]) -> tuple[Any, Any]:
    """The network as one TensorFlow function for converters (LiteRT): ``images`` ``[B, H, W, 3]`` in [0, 1]
    at ``image_size`` → ``{"logits": ..., "features": ...}`` (``features`` only without a classifier), and the
    object that owns its variables (a converter needs both)."""
    network = _TFNetwork(tf, model)
    owner = tf.Module()
    owner.network_variables = list(network.variables.values())
    spec = tf.TensorSpec([None, *image_size, 3], tf.float32, name=INPUT_NAME)

    @tf.function(input_signature=[spec], autograph=False)
    def serving(images):
        logits, features = network(images)
        return {LOGITS: logits, FEATURES: features} if model.num_classes else {FEATURES: features}

    return serving, owner


def run_savedmodel(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """Load the SavedModel with ``tf.saved_model.load`` and run ``serving_default``: ``{output name: array}``."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    outputs = loaded.signatures[SERVING_DEFAULT](**{INPUT_NAME: tf.constant(images)})
    return {name: value.numpy() for name, value in outputs.items()}


class _TFNetwork:
    """``images [B, H, W, 3]`` in [0, 1] → ``(logits or None, features)``, replaying a PyTorch network in TF.

    Variables are created once, here; calling the object (inside a ``tf.function``) builds the ops by walking
    the PyTorch modules in forward order. Every tensor the TF graph needs is read exactly once, and every
    inference tensor of the state dict must be used (strict and loud, like the weight readers).
    """

    def __init__(self, tf: Any, model: InceptionResNetV2) -> None:
        self.tf = tf
        self.model = model
        self.prefixes = {id(module): name for name, module in model.named_modules()}
        state = {key: value.detach().cpu().float().numpy() for key, value in model.state_dict().items()}
        tf_names = {key: tf_name for tf_name, (key, _) in tensor_map(logits=model.num_classes > 0, aux=False).items()}
        self.variables: dict[str, Any] = {}
        for key, value in state.items():
            if key.endswith("num_batches_tracked") or key.startswith("aux_logits."):
                continue  # training bookkeeping and the auxiliary head: not on the inference path
            if key.endswith("bn.weight"):
                if np.all(value == 1.0):
                    continue  # TF-Slim's BatchNorm has no gamma; irv2 keeps a frozen one of ones
                name = tf_names[key.replace("bn.weight", "bn.bias")].replace("/beta", "/gamma")
                self.variables[key] = tf.Variable(value, trainable=False, name=name)
                continue
            if key not in tf_names:
                raise ValueError(f"cannot export {key!r} {value.shape}: no TF-Slim name for it")
            self.variables[key] = tf.Variable(_tf_layout(key, value), trainable=_trainable(key), name=tf_names[key])
        self._unused: set[str] = set()

    def __call__(self, images: Any) -> tuple[Any, Any]:
        tf = self.tf
        self._unused = set(self.variables)
        x = 2.0 * images - 1.0
        for _, attr in STAGES:
            x = self._run(getattr(self.model, attr), x)
        # A mean over H and W: TF-Slim's 8x8 VALID pool at 299 px and its reduce_mean at other sizes.
        features = tf.reduce_mean(x, axis=[1, 2])
        logits = self._linear(self.model.classif, features) if self.model.num_classes else None
        if self._unused:
            raise ValueError(f"export left weights unused: {sorted(self._unused)}")
        return logits, features

    # -- one method per PyTorch module type ----------------------------------------------------------------
    def _run(self, module: nn.Module, x: Any) -> Any:
        tf = self.tf
        if isinstance(module, ConvBnAct):
            return self._conv_bn_act(module, x)
        if isinstance(module, nn.Sequential):
            for layer in module:
                x = self._run(layer, x)
            return x
        if isinstance(module, (Mixed5b, Mixed6a, Mixed7a)):
            branches = [child for name, child in module.named_children() if name.startswith("branch")]
            return tf.concat([self._run(branch, x) for branch in branches], axis=-1)
        if isinstance(module, (Block35, Block17, Block8)):
            mixed = tf.concat([self._run(getattr(module, name), x) for name in module._branch_names], axis=-1)
            return self._run(module.act, x + module.scale * self._conv(module.conv2d, mixed))
        if isinstance(module, nn.MaxPool2d):
            _check_pool(module, padding=0)
            return tf.nn.max_pool2d(x, module.kernel_size, module.stride, "VALID")
        if isinstance(module, nn.AvgPool2d):
            # count_include_pad=False is TF's SAME average pool: border cells divide by in-bounds cells only.
            _check_pool(module, padding=_pair(module.kernel_size)[0] // 2)
            if module.count_include_pad or _pair(module.stride) != (1, 1):
                raise ValueError(f"cannot export {module}: only TF's SAME stride-1 average pool is supported")
            return tf.nn.avg_pool2d(x, module.kernel_size, 1, "SAME")
        if isinstance(module, nn.ReLU):
            return tf.nn.relu(x)
        if isinstance(module, nn.Identity):
            return x
        raise ValueError(f"cannot export {type(module).__name__} to TensorFlow")

    def _conv_bn_act(self, layer: ConvBnAct, x: Any) -> Any:
        tf = self.tf
        prefix = self.prefixes[id(layer)]
        bn = layer.bn
        y = self._conv(layer.conv, x)
        y = tf.nn.batch_normalization(
            y,
            mean=self._take(f"{prefix}.bn.running_mean"),
            variance=self._take(f"{prefix}.bn.running_var"),
            offset=self._take(f"{prefix}.bn.bias"),
            scale=self._take(f"{prefix}.bn.weight", optional=True),
            variance_epsilon=bn.eps,
        )
        return self._run(layer.act, y)

    def _conv(self, conv: nn.Conv2d, x: Any) -> Any:
        prefix = self.prefixes[id(conv)]
        if conv.groups != 1 or _pair(conv.dilation) != (1, 1) or not isinstance(conv.padding, tuple):
            raise ValueError(f"cannot export {prefix}: {conv}")
        ph, pw = conv.padding
        # PyTorch's padding is symmetric and explicit; TF's SAME would agree here (stride 1, odd kernels) but
        # spelling the padding out keeps the two graphs identical by construction.
        padding = [[0, 0], [ph, ph], [pw, pw], [0, 0]]
        y = self.tf.nn.conv2d(x, self._take(f"{prefix}.weight"), strides=conv.stride, padding=padding)
        if conv.bias is not None:
            y = self.tf.nn.bias_add(y, self._take(f"{prefix}.bias"))
        return y

    def _linear(self, linear: nn.Linear, x: Any) -> Any:
        prefix = self.prefixes[id(linear)]
        return self.tf.nn.bias_add(self.tf.matmul(x, self._take(f"{prefix}.weight")), self._take(f"{prefix}.bias"))

    def _take(self, key: str, optional: bool = False) -> Any:
        if key not in self.variables:
            if optional:
                return None
            raise ValueError(f"cannot export: the network needs {key!r}, which the state dict lacks")
        if key not in self._unused:
            raise ValueError(f"cannot export: {key!r} would be used twice")
        self._unused.discard(key)
        return self.variables[key]


def _tf_layout(key: str, value: np.ndarray) -> np.ndarray:
    """PyTorch → TF layout: conv kernels OIHW → HWIO, the classifier [out, in] → [in, out]."""
    if value.ndim == 4:
        return np.ascontiguousarray(value.transpose(2, 3, 1, 0))
    if value.ndim == 2:
        return np.ascontiguousarray(value.T)
    return value


def _trainable(key: str) -> bool:
    # The moving statistics are running averages, not learned by gradient; TF-Slim marks them so too.
    return not key.endswith(("running_mean", "running_var"))


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def _check_pool(pool: nn.MaxPool2d | nn.AvgPool2d, padding: int) -> None:
    if getattr(pool, "ceil_mode", False) or _pair(pool.padding) != (padding, padding):
        raise ValueError(f"cannot export {pool}: its padding has no TF-Slim equivalent")
