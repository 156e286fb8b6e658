"""``hub.Module``: an :class:`irv2.Module` called as TF-Hub's TF1 ``hub.Module`` is."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch

from ..api import load as _load
from ..api import save as _save
from ..api.module import Module as _Module
from ..api.train_graph import freeze_moving_averages
from ..errors import OptionError
from .attached import attached_message
from .spec import ModuleSpec, _tag_set


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
            batch statistics, dropout before the classifier), as ``irv2.load(..., tags=...)``. In the train graph
            the BatchNorm moving averages update at each call only when ``trainable`` (TF1 ran UPDATE_OPS with
            the train op); otherwise they stay as loaded. :meth:`train` and :meth:`eval` switch graphs later, and
            :attr:`tags` says which is in use.
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
        self.trainable = trainable
        self._update_moving_averages = trainable
        self._hold_variables()

    def train(self, mode: bool = True) -> Module:
        """Switch graphs as :meth:`irv2.Module.train` does, keeping TF-Hub's rules for this module: only a
        ``trainable`` module's variables train, and only its moving averages change in the train graph (TF1
        updated them when the caller ran UPDATE_OPS, collected for a trainable module alone)."""
        super().train(mode)
        self._hold_variables()
        return self

    def _hold_variables(self, *, update_moving_averages: bool | None = None) -> None:
        """Apply ``trainable`` to the network: which tensors take gradients, and whether the moving averages move
        in the train graph (as ``trainable`` unless told otherwise, which is then kept for later switches)."""
        if update_moving_averages is not None:
            self._update_moving_averages = update_moving_averages
        tf_variables = {id(tensor) for tensor in self.variable_map.values()}
        for parameter in self.model.parameters():
            parameter.requires_grad_(self.trainable and id(parameter) in tf_variables)
        freeze_moving_averages(self.model, frozen=not self._update_moving_averages)

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

    def get_attached_message(self, key: str, message_type: Any, required: bool = False) -> Any:
        """As :meth:`ModuleSpec.get_attached_message`, for the graph this module was made with: None."""
        return attached_message(self.handle, key, required)

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
