"""TF-Hub's TF1 API (``hub.Module``, ``hub.load_module_spec``, ``hub.get_expected_image_size``) over irv2.

TF1 code written against ``google/imagenet/inception_resnet_v2/{classification,feature_vector}/1`` ports by
changing its import, with no TensorFlow::

    import irv2.tfhub as hub

    module = hub.Module("https://tfhub.dev/google/imagenet/inception_resnet_v2/classification/1")
    height, width = hub.get_expected_image_size(module)      # [299, 299]
    logits = module(images)                                  # numpy [B, 299, 299, 3] in [0, 1] -> [B, 1001]

There is no graph and no session: a call computes its outputs at once, so ``session.run(outputs)`` becomes the
call itself. Numpy in gives numpy out, computed without autograd; a ``torch.Tensor`` in gives tensors out,
differentiable when grad is enabled (what fine-tuning needs). ``hub.Module`` *is* an :class:`irv2.Module`, so
everything of irv2's API (``module.preprocess``, ``module.labels``, ``module.model``, ``irv2.save``) works on it.
docs/migrating.md shows the common TF1 snippets before and after.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, NoReturn

import torch

from .api import load as _load
from .api import save as _save
from .api.module import Module as _Module
from .api.signatures import (
    FEATURE_VECTOR,
    SIGNATURES,
    TensorInfo,
    endpoint_names,
    input_info,
    output_info,
)
from .errors import Irv2Error, OptionError

__all__ = [
    "Module",
    "ModuleSpec",
    "get_expected_image_size",
    "get_num_image_channels",
    "load_module_spec",
]

TRAIN = "train"
# The graphs a TF1 Hub image module holds, by tag set: inference (BatchNorm on its moving averages, no dropout)
# and training (BatchNorm on batch statistics, dropout before the classifier).
TAG_SETS: tuple[frozenset[str], ...] = (frozenset(), frozenset({TRAIN}))
IMAGES = "images"


def _tag_set(tags: Iterable[str] | None) -> frozenset[str]:
    """``tags`` as one of :data:`TAG_SETS` (None is the empty set; a lone string is one tag), or an
    :class:`~irv2.errors.OptionError` listing the tag sets there are."""
    found = frozenset() if tags is None else frozenset({tags} if isinstance(tags, str) else tags)
    if found not in TAG_SETS:
        raise OptionError(
            f"tags {_show_tags(found)}: no such graph; this module has the tag sets set() (inference) and "
            f"{{'train'}} (fine-tuning)"
        )
    return found


def _show_tags(tags: frozenset[str]) -> str:
    return "{" + ", ".join(repr(tag) for tag in sorted(tags)) + "}" if tags else "set()"


class _Facts(NamedTuple):
    """What a spec answers from: the loaded module's input size, classes, default signature and AuxLogits head."""

    image_size: tuple[int, int]
    num_classes: int
    default_signature: str
    aux: bool

    @classmethod
    def of(cls, module: _Module) -> _Facts:
        aux = module.model.aux_logits is not None and module.num_classes > 0
        return cls(module.expected_image_size, module.num_classes, module.info.default_signature, aux)


class ModuleSpec:
    """What ``hub.load_module_spec(handle)`` returns: a module's signatures, tag sets and tensor infos, and
    ``hub.Module(spec)`` to instantiate it.

    The weights are loaded (with ``irv2.load``, fetched and cached as it does) at the first question asked, and
    kept until the first inference-graph ``hub.Module(spec)`` takes them over; every later ``hub.Module(spec)``
    loads its own copy, as each TF-Hub module instance has its own variables.
    """

    def __init__(self, handle: str | os.PathLike[str], **load_options: Any) -> None:
        self.handle = handle
        self._options = load_options
        self._loaded: _Module | None = None  # weights loaded and not yet taken by a hub.Module
        self._facts: _Facts | None = None

    def _load(self) -> _Facts:
        """What the spec answers from, loading the weights the first time."""
        if self._facts is None:
            self._loaded = _load(self.handle, **self._options)
            self._facts = _Facts.of(self._loaded)
        return self._facts

    def _learn(self, module: _Module) -> None:
        """Take the facts from ``module`` (loaded by a ``hub.Module(spec)``), unless known already."""
        if self._facts is None:
            self._facts = _Facts.of(module)

    def _take(self, options: dict[str, Any]) -> _Module | None:
        """The loaded inference-graph module, for the first ``hub.Module(spec)`` made with the same options."""
        if options != self._options:
            return None
        module, self._loaded = self._loaded, None
        return module

    def get_tags(self) -> list[set[str]]:
        """The tag sets of the module's graphs: ``[set(), {"train"}]``."""
        return [set(tags) for tags in TAG_SETS]

    def get_signature_names(self, tags: Iterable[str] | None = None) -> list[str]:
        """``["default", "image_classification", "image_feature_vector"]``; a feature-vector module has no
        ``image_classification``."""
        _tag_set(tags)
        return ["default", *self._signatures()]

    def get_input_info_dict(
        self, signature: str | None = None, tags: Iterable[str] | None = None
    ) -> dict[str, TensorInfo]:
        """``{"images": float32 [None, height, width, 3]}``, images in [0, 1]."""
        _tag_set(tags)
        self._resolve(signature)
        return input_info(self._load().image_size)

    def get_output_info_dict(
        self, signature: str | None = None, tags: Iterable[str] | None = None
    ) -> dict[str, TensorInfo]:
        """``default`` (float32 logits ``[None, num_classes]`` or features ``[None, 1536]``) and every TF-Slim end
        point, keyed ``InceptionResnetV2/<name>``, NHWC; ``AuxLogits`` too in the ``{"train"}`` graph."""
        train = TRAIN in _tag_set(tags)
        signature = self._resolve(signature)
        facts = self._load()
        names = endpoint_names(classifier=facts.num_classes > 0, aux=train and facts.aux)
        return output_info(signature, facts.image_size, facts.num_classes, names)

    def _signatures(self) -> tuple[str, ...]:
        return SIGNATURES if self._load().num_classes else (FEATURE_VECTOR,)

    def _resolve(self, signature: str | None) -> str:
        if signature in (None, "default"):
            return self._load().default_signature
        if signature not in self._signatures():
            raise OptionError(
                f"signature {signature!r}: no such signature; this module has {['default', *self._signatures()]}"
            )
        return signature

    def __repr__(self) -> str:
        return f"irv2.tfhub.ModuleSpec({os.fspath(self.handle)!r})"


def load_module_spec(handle: str | os.PathLike[str], **load_options: Any) -> ModuleSpec:
    """The :class:`ModuleSpec` of ``handle`` (anything ``irv2.load`` takes: a tfhub.dev or Kaggle URL, a
    registered name, a local module folder or file). ``load_options`` (``device``, ``dtype``, ``engine``,
    ``offline``, ``progress``) go to ``irv2.load``. The weights load at the spec's first use, not here."""
    return ModuleSpec(handle, **load_options)


class Module(_Module):
    """``hub.Module(spec_or_handle, trainable=False, name="module", tags=None)``: an :class:`irv2.Module`,
    called as TF-Hub's is.

    ``module(images)`` gives the default signature's output (logits ``[B, num_classes]`` for classification/1,
    features ``[B, 1536]`` for feature_vector/1); ``module(dict(images=images), signature=..., as_dict=True)``
    gives ``default`` and every TF-Slim end point. ``images``: float ``[B, 299, 299, 3]`` in [0, 1].

    Args:
        spec_or_handle: a :class:`ModuleSpec`, or any handle ``irv2.load`` takes.
        trainable: True to let the module's variables train (``requires_grad``): those of :attr:`variable_map`
            that are parameters (weights, biases, BatchNorm's beta). False (TF-Hub's default) freezes every
            parameter. The TF-Hub module has no BatchNorm scale, so PyTorch's stays fixed at one either way.
        name: the module's name (TF's variable scope); kept as :attr:`name`, it names nothing else.
        tags: None or ``set()`` for the inference graph, ``{"train"}`` for the training graph (BatchNorm on
            batch statistics, dropout before the classifier), as ``irv2.load(..., tags=...)``.
        device, dtype, engine, offline, progress: passed to ``irv2.load``.

    Raises:
        OptionError: tags other than ``set()`` and ``{"train"}``.
        Irv2Error: weights that cannot be found, fetched or read (as ``irv2.load``).
    """

    def __init__(
        self,
        spec_or_handle: ModuleSpec | str | os.PathLike[str],
        trainable: bool = False,
        name: str = "module",
        tags: Iterable[str] | None = None,
        **load_options: Any,
    ) -> None:
        tag_set = _tag_set(tags)
        spec = spec_or_handle if isinstance(spec_or_handle, ModuleSpec) else None
        handle = spec.handle if spec is not None else spec_or_handle
        options = {**spec._options, **load_options} if spec is not None else load_options
        loaded = spec._take(options) if spec is not None and not tag_set else None
        if loaded is None:
            loaded = _load(handle, tags=set(tag_set), **options)
        if spec is not None:
            spec._learn(loaded)
        super().__init__(loaded.model, loaded.info, loaded.engine)
        self.handle = handle
        self.name = name
        self.tags = set(tag_set)
        self.trainable = trainable
        tf_variables = {id(tensor) for tensor in self.variable_map.values()}
        for parameter in self.model.parameters():
            parameter.requires_grad_(trainable and id(parameter) in tf_variables)

    def __call__(
        self,
        images: Any = None,
        signature: str | None = None,
        as_dict: bool | None = False,
        *,
        inputs: Any = None,
    ) -> Any:
        """As :meth:`irv2.Module.__call__`; ``inputs=`` is TF-Hub's name for ``images``."""
        if inputs is not None:
            if images is not None:
                raise OptionError("inputs: pass the images once, as the first argument or as inputs=")
            images = inputs
        return super().__call__(images, signature, bool(as_dict))

    @property
    def variables(self) -> list[torch.Tensor]:
        """Every variable of the TF-Hub module (the values of :attr:`variable_map`), as the network's own tensors:
        weights, biases, BatchNorm's beta and moving averages."""
        return list(self.variable_map.values())

    @property
    def trainable_variables(self) -> list[torch.Tensor]:
        """The variables that train (``requires_grad``), what ``tf.trainable_variables()`` held of the module:
        give these to the optimizer. Empty unless ``trainable=True``."""
        return [variable for variable in self.variables if variable.requires_grad]

    def export(self, path: str | os.PathLike[str], session: Any = None) -> None:
        """Write the module, its current weights included, where ``hub.Module(path)`` and ``irv2.load(path)``
        read it back: an irv2 module folder (``irv2.save``), not a TF-Hub one. ``session`` is TF-Hub's and
        ignored (there is none). ``irv2.export(module, path, format="savedmodel")`` writes a SavedModel."""
        _save(self, path)

    def __repr__(self) -> str:
        return (
            f"irv2.tfhub.Module({os.fspath(self.handle)!r}, trainable={self.trainable}, tags={self.tags}, "
            f"num_classes={self.num_classes}, precision={self.precision!r})"
        )


def _image_input(module_or_spec: Any, signature: str | None, input_name: str | None) -> list[int | None]:
    """The shape of the image input of ``signature``: ``[None, height, width, channels]``."""
    infos = module_or_spec.get_input_info_dict(signature)
    name = IMAGES if input_name is None else input_name
    if name not in infos:
        raise OptionError(
            f"input_name {name!r}: no such input; signature {signature or 'default'} takes {sorted(infos)}"
        )
    return infos[name].get_shape().as_list()


def get_expected_image_size(
    module_or_spec: Any, signature: str | None = None, input_name: str | None = None
) -> list[int]:
    """``[height, width]`` the module takes (``[299, 299]`` for the TF-Hub modules, a fine-tuned module's own
    size), read from its ``images`` input as TF-Hub reads it. Takes a :class:`Module`, an :class:`irv2.Module`
    or a :class:`ModuleSpec`."""
    return _image_input(module_or_spec, signature, input_name)[1:3]


def get_num_image_channels(module_or_spec: Any, signature: str | None = None, input_name: str | None = None) -> int:
    """The number of colour channels the module takes: 3 (RGB)."""
    return _image_input(module_or_spec, signature, input_name)[3]


# TF-Hub's other entry points, and what to use instead in irv2.
_UNSUPPORTED = {
    "KerasLayer": (
        "hub.KerasLayer wraps TF2 SavedModels in Keras, and irv2 has no Keras layer: use hub.Module(handle) (its "
        "`.model` is a torch.nn.Module), or for Keras export a SavedModel with "
        "irv2.export(module, path, format='savedmodel')"
    ),
    "load": (
        "hub.load reads TF2 SavedModels (classification/4 and later), which irv2 does not read: "
        "the TF1 modules (classification/1, feature_vector/1) load with hub.Module(handle) or irv2.load(handle)"
    ),
    "image_embedding_column": (
        "irv2 has no Estimator feature columns: compute the features with "
        "module(images, signature='image_feature_vector'), or `irv2 features` on the command line"
    ),
    "text_embedding_column": "irv2 is an image model: it has no text embeddings",
    "sparse_text_embedding_column": "irv2 is an image model: it has no text embeddings",
    "create_module_spec": (
        "irv2 does not build TF-Hub modules: save a module with irv2.save(module, path) or module.export(path), "
        "and export it for TensorFlow with irv2.export(module, path, format='savedmodel')"
    ),
}
_UNSUPPORTED |= dict.fromkeys(
    ("add_signature", "attach_message", "register_module_for_export", "LatestModuleExporter"),
    _UNSUPPORTED["create_module_spec"],
)


def __getattr__(name: str) -> Callable[..., NoReturn]:
    """TF-Hub's other names exist, so that ported code fails where it uses one, saying what to do instead."""
    if name not in _UNSUPPORTED:
        raise AttributeError(f"module 'irv2.tfhub' has no attribute {name!r}")

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise Irv2Error(f"hub.{name} is not supported by irv2.tfhub: {_UNSUPPORTED[name]}")

    refuse.__name__ = refuse.__qualname__ = name
    return refuse
