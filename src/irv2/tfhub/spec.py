"""``hub.load_module_spec`` and ``hub.ModuleSpec``: what a module holds (signatures, tag sets, tensor infos),
answered from the loaded weights."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, NamedTuple

from ..api import load as _load
from ..api.declared_outputs import signature_output_info
from ..api.module import Module as _Module
from ..api.signatures import (
    FEATURE_VECTOR,
    SIGNATURES,
    TensorInfo,
    endpoint_names,
    input_info,
    is_default,
    output_info,
)
from ..errors import OptionError
from .attached import attached_message

TRAIN = "train"
# The graphs a TF1 Hub image module holds, by tag set: inference (BatchNorm on its moving averages, no dropout)
# and training (BatchNorm on batch statistics, dropout before the classifier).
TAG_SETS: tuple[frozenset[str], ...] = (frozenset(), frozenset({TRAIN}))


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
    """What a spec answers from: the loaded module's input size, classes, default signature, AuxLogits head and
    provenance (which holds what the module's file declares its signatures output)."""

    image_size: tuple[int, int]
    num_classes: int
    default_signature: str
    aux: bool
    provenance: dict[str, Any]

    @classmethod
    def of(cls, module: _Module) -> _Facts:
        aux = module.model.aux_logits is not None and module.num_classes > 0
        info = module.info
        return cls(module.expected_image_size, module.num_classes, info.default_signature, aux, info.provenance)


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
        """``default`` (float32 logits ``[None, num_classes]`` or features ``[None, 1536]``), alone for the default
        signature (None or ``"default"``); a named signature adds every TF-Slim end point, keyed
        ``InceptionResnetV2/<name>``, NHWC, and ``AuxLogits`` in the ``{"train"}`` graph. Where the module's file
        declares the signature's outputs in that graph, what it declares, as ``irv2.Module.get_output_info_dict``
        says."""
        tag_set = _tag_set(tags)
        facts = self._load()
        aux = TRAIN in tag_set and facts.aux
        names = () if is_default(signature) else endpoint_names(classifier=facts.num_classes > 0, aux=aux)
        computed = output_info(self._resolve(signature), facts.image_size, facts.num_classes, names)
        return signature_output_info(computed, facts.provenance, signature, tag_set)

    def get_attached_message(
        self, key: str, message_type: Any, tags: Iterable[str] | None = None, required: bool = False
    ) -> Any:
        """The message the module attaches under ``key``: None, since the ``/1`` modules attach none (TF-Hub's
        own ``get_expected_image_size`` asks for ``image_module_info`` and then reads the input shape).

        Raises:
            KeyError: ``required=True``, as TF-Hub raises for a key the module does not attach.
        """
        _tag_set(tags)
        return attached_message(self.handle, key, required)

    def _signatures(self) -> tuple[str, ...]:
        return SIGNATURES if self._load().num_classes else (FEATURE_VECTOR,)

    def _resolve(self, signature: str | None) -> str:
        if is_default(signature):
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
