"""``hub.load``: TF2's loader, over the TF1 modules as TF2 reads them (``tf.saved_model.load`` of a TF1 Hub
folder): signatures called with ``images=`` that give their output dict, and the module's variables."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch

from ..errors import OptionError
from .module import Module
from .spec import _tag_set


class SignatureFunction:
    """One signature of a :func:`load`-ed module, as TF2's ``loaded.signatures[name]``: called with the images
    (``images=x`` as TF2 requires, or positionally), it gives the signature's output dict.

    ``default`` gives ``{"default": output}``; ``image_classification`` and ``image_feature_vector`` give
    ``default`` and every TF-Slim end point, the end points computed when one is first read. Numpy in gives
    numpy out; a tensor in gives tensors, differentiable with respect to ``trainable_variables`` when grad is
    enabled (what ``tf.GradientTape`` recorded).
    """

    def __init__(self, module: Module, name: str) -> None:
        self._module = module
        self.name = name

    def __call__(self, *args: Any, images: Any = None) -> Mapping[str, Any]:
        if args:
            if images is not None or len(args) > 1:
                raise OptionError(f"signature {self.name!r} takes one input, the images: pass them once, as images=")
            images = args[0]
        if images is None:
            raise OptionError(f"signature {self.name!r} takes images=float32 [batch, height, width, 3] in [0, 1]")
        return self._module(dict(images=images), signature=self.name, as_dict=True)

    def __repr__(self) -> str:
        return f"<signature {self.name!r} of {self._module.handle!r}>"


class Signatures(Mapping[str, SignatureFunction]):
    """``loaded.signatures``: the signature functions by name, ``default`` first."""

    def __init__(self, module: Module) -> None:
        self._functions = {name: SignatureFunction(module, name) for name in module.get_signature_names()}

    def __getitem__(self, name: str) -> SignatureFunction:
        try:
            return self._functions[name]
        except KeyError:
            raise KeyError(f"no signature {name!r}; this module has {list(self._functions)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._functions)

    def __len__(self) -> int:
        return len(self._functions)

    def __repr__(self) -> str:
        return f"_SignatureMap({list(self._functions)})"


class LoadedModule:
    """What ``hub.load(handle)`` gives for a TF1 Hub module in TF2.

    Attributes:
        signatures: ``default``, ``image_classification`` (classification modules) and ``image_feature_vector``,
            each a :class:`SignatureFunction`.
        variables: every variable of the module (weights, biases, BatchNorm's beta and moving averages), as the
            network's own tensors.
        trainable_variables: those TF saved as trainable (weights, biases, beta); they take gradients, as TF2's
            trainable variables do under a ``GradientTape``. Call with numpy, or under ``torch.no_grad()``, for
            inference alone.
        tags: the graph the signatures run: ``set()`` (inference) or ``{"train"}`` (BatchNorm on batch
            statistics, dropout before the classifier). TF2's loader drops TF1's update ops, so the moving
            averages never change.
        module: the :class:`irv2.tfhub.Module` underneath, with all of irv2's API (``preprocess``, ``labels``).
    """

    def __init__(self, module: Module) -> None:
        self.module = module
        self.signatures = Signatures(module)
        self._is_hub_module_v1 = True  # TF-Hub's own mark on what it loads from the TF1 Hub format

    @property
    def tags(self) -> set[str]:
        return self.module.tags

    @property
    def variables(self) -> list[torch.Tensor]:
        return self.module.variables

    @property
    def trainable_variables(self) -> list[torch.Tensor]:
        return self.module.trainable_variables

    def __repr__(self) -> str:
        return f"<irv2.tfhub.load({os.fspath(self.module.handle)!r}, tags={self.tags}): {list(self.signatures)}>"


def load(
    handle: str | os.PathLike[str], tags: Iterable[str] | None = None, options: Any = None, **load_options: Any
) -> LoadedModule:
    """``hub.load(handle, tags=None)``: the TF1 module at ``handle`` (anything ``irv2.load`` takes) as TF2 loads it.

    ``tags``: None or ``set()`` for the inference graph, ``{"train"}`` for the training graph. ``options`` is
    TF's ``tf.saved_model.LoadOptions`` and has nothing to set here: it must be None. ``load_options``
    (``device``, ``dtype``, ``engine``, ``offline``, ``progress``) go to ``irv2.load``.

    Raises:
        OptionError: tags other than ``set()`` and ``{"train"}``, or ``options`` given.
        Irv2Error: weights that cannot be found, fetched or read (as ``irv2.load``).
    """
    if options is not None:
        raise OptionError(
            "options: tf.saved_model.LoadOptions set how TensorFlow reads a SavedModel, and irv2 reads no "
            "TensorFlow graph: leave it out (device and engine are irv2.load's options, e.g. device='cuda')"
        )
    tag_set = _tag_set(tags)
    module = Module(handle, trainable=True, tags=tag_set, **load_options)
    module._hold_variables(update_moving_averages=False)  # TF2's loader drops the update ops, not trainability
    return LoadedModule(module)
