"""What each signature takes and gives, as ``hub.Module.get_input_info_dict`` / ``get_output_info_dict`` and
the TF-Hub end points describe it.

TF-Hub's image modules take ``images`` float32 ``[batch, height, width, 3]`` in [0, 1] and give ``default``
(logits or the feature vector) and, with ``as_dict=True``, the network's end points under the
``InceptionResnetV2/`` scope, NHWC as TF-Slim computes them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import numpy as np

from ..errors import OptionError
from ..model.names import BASE_ENDPOINTS, NUM_FEATURES
from ..weights.slim_names import SCOPE

CLASSIFICATION = "image_classification"
FEATURE_VECTOR = "image_feature_vector"
SIGNATURES = (CLASSIFICATION, FEATURE_VECTOR)
DEFAULT = "default"  # TF-Hub's name for the module's default signature, and for each signature's main output


def is_default(signature: str | None) -> bool:
    """Whether ``signature`` asks for the default signature (None or ``"default"``), whose output dict and
    info dict hold ``default`` alone."""
    return signature in (None, DEFAULT)


# The end points TF-Slim's ``inception_resnet_v2`` adds after the base network, in order. ``global_pool``
# ([batch, 1, 1, 1536]) is the pooled map; ``PreLogitsFlatten`` the same flattened, after dropout (none
# outside training); ``Logits`` and ``Predictions`` (softmax) exist with a classifier, ``AuxLogits`` in the
# train graph (``tags={"train"}``) of a network that has the auxiliary head.
HEAD_ENDPOINTS = ("global_pool", "PreLogitsFlatten", "Logits", "Predictions", "AuxLogits")
CLASSIFIER_ENDPOINTS = ("Logits", "Predictions", "AuxLogits")


def endpoint_key(name: str) -> str:
    """The key of end point ``name`` in a TF-Hub output dict: ``InceptionResnetV2/<name>``."""
    return f"{SCOPE}/{name}"


def endpoint_names(*, classifier: bool, aux: bool) -> tuple[str, ...]:
    """The end points a network gives, in network order: with a classifier or without (a feature-vector
    module), with ``AuxLogits`` or without (only the train graph of a network that has the head)."""
    head = [name for name in HEAD_ENDPOINTS if classifier or name not in CLASSIFIER_ENDPOINTS]
    return (*BASE_ENDPOINTS, *(name for name in head if aux or name != "AuxLogits"))


def resolve_endpoints(names: str | Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """``names`` (short, ``Mixed_6a``, or keyed, ``InceptionResnetV2/Mixed_6a``; None for all) as short names
    in network order. An unknown name is an :class:`OptionError` that lists the ones there are."""
    if names is None:
        return list(available)
    if isinstance(names, str):
        names = [names]
    prefix = endpoint_key("")
    short = {name.removeprefix(prefix) for name in names}
    unknown = sorted(short - set(available))
    if unknown:
        raise OptionError(f"names: no end point {unknown} here; this module has {list(available)}")
    return [name for name in available if name in short]


class TensorShape:
    """A shape with unknown dimensions as None, read as TF's ``TensorShape`` is: ``as_list()``, ``rank``,
    indexing, iteration, and equality with a list or tuple."""

    def __init__(self, dims: Sequence[int | None]) -> None:
        self.dims = tuple(dims)

    def as_list(self) -> list[int | None]:
        return list(self.dims)

    @property
    def rank(self) -> int:
        return len(self.dims)

    ndims = rank

    def __len__(self) -> int:
        return len(self.dims)

    def __iter__(self) -> Iterator[int | None]:
        return iter(self.dims)

    def __getitem__(self, index: int) -> int | None:
        return self.dims[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TensorShape):
            return self.dims == other.dims
        if isinstance(other, (list, tuple)):
            return self.dims == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.dims)

    def __repr__(self) -> str:
        return f"TensorShape({list(self.dims)})"

    def __str__(self) -> str:
        """As TF prints a shape: ``(None, 299, 299, 3)``."""
        inner = ", ".join(str(dim) for dim in self.dims)
        return f"({inner},)" if len(self.dims) == 1 else f"({inner})"


class TensorInfo:
    """One input or output of a signature, as TF-Hub's ``ParsedTensorInfo``: ``dtype`` (a numpy dtype, whose
    ``.name`` is TF's: ``float32``), ``get_shape()`` and ``is_sparse``."""

    is_sparse = False

    def __init__(self, dtype: str, shape: Sequence[int | None]) -> None:
        self.dtype = np.dtype(dtype)
        self._shape = TensorShape(shape)

    def get_shape(self) -> TensorShape:
        return self._shape

    @property
    def shape(self) -> TensorShape:
        return self._shape

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorInfo):
            return NotImplemented
        return self.dtype == other.dtype and self._shape == other._shape

    def __hash__(self) -> int:
        return hash((self.dtype, self._shape))

    def __repr__(self) -> str:
        return f"<TensorInfo shape={self._shape.as_list()} dtype={self.dtype.name}>"


def input_info(image_size: tuple[int, int]) -> dict[str, TensorInfo]:
    """``{"images": float32 [None, height, width, 3]}``, the one input of both signatures."""
    return {"images": TensorInfo("float32", [None, *image_size, 3])}


def output_info(
    signature: str, image_size: tuple[int, int], num_classes: int, names: Sequence[str]
) -> dict[str, TensorInfo]:
    """``default`` (logits ``[None, num_classes]`` or features ``[None, 1536]``) and the end points ``names``
    with their shapes at ``image_size``."""
    width = num_classes if signature == CLASSIFICATION else NUM_FEATURES
    shapes = _base_shapes(*image_size)
    head = {
        "global_pool": [1, 1, NUM_FEATURES],
        "PreLogitsFlatten": [NUM_FEATURES],
        "Logits": [num_classes],
        "Predictions": [num_classes],
        "AuxLogits": [num_classes],
    }
    info = {"default": TensorInfo("float32", [None, width])}
    for name in names:
        info[endpoint_key(name)] = TensorInfo("float32", [None, *(shapes.get(name) or head[name])])
    return info


@functools.lru_cache(maxsize=8)
def _base_shapes(height: int, width: int) -> dict[str, list[int]]:
    """The NHWC shape (batch left out) of each base end point at ``height`` x ``width``: the network itself run
    on the meta device, which computes shapes and allocates nothing."""
    import torch

    from ..model import InceptionResNetV2

    with torch.device("meta"):
        network = InceptionResNetV2(num_classes=0, aux_logits=False).eval()
        points = network.forward_endpoints(torch.empty(1, 3, height, width))
    return {name: [point.shape[2], point.shape[3], point.shape[1]] for name, point in points.items()}
