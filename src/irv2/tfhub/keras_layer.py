"""``hub.KerasLayer``: a TF1 image module as a layer, here a ``torch.nn.Module`` to put in ``nn.Sequential``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from ..errors import OptionError
from .module import Module
from .spec import TRAIN, _tag_set

# What ``arguments=`` may set: the train graph's knobs that TF-Hub's later image modules take as arguments.
_ARGUMENTS = ("batch_norm_momentum", "dropout_rate")


class KerasLayer(torch.nn.Module):
    """``hub.KerasLayer(handle, trainable=False, arguments=None, tags=None, signature=None,
    signature_outputs_as_dict=None, output_key=None)`` as a ``torch.nn.Module``.

    It takes float images ``[B, H, W, 3]`` in [0, 1], channels last as TF's were (a tensor, or numpy, which is
    made a tensor), and gives a tensor: the signature's ``default`` output (logits ``[B, num_classes]``, or
    features ``[B, 1536]`` for ``signature="image_feature_vector"`` or a feature_vector module), another
    output named by ``output_key``, or the signature's whole dict with ``signature_outputs_as_dict=True``.
    As for a TF1 module in TF-Hub, ``signature`` defaults to ``default`` and ``output_key`` to ``default``.

    Graphs, as Keras' ``training`` argument chose them: a ``trainable=True`` layer runs the train graph
    (BatchNorm on batch statistics, updating its moving averages; dropout before the classifier) under
    ``.train()``, and the inference graph under ``.eval()``. A layer with ``trainable=False`` (the default)
    runs the inference graph always, its variables frozen, as Keras runs a frozen BatchNorm; ``tags={"train"}``
    runs the train graph always, the moving averages updating only when ``trainable``. TF-Hub itself refuses
    ``trainable=True`` for TF1 modules; irv2 fine-tunes them.

    Args:
        handle: anything ``irv2.load`` takes (a tfhub.dev or Kaggle URL, a registered name, a local folder or
            file).
        trainable: whether the module's variables train (TF's trainable weights: weights, biases, BatchNorm's
            beta) and the train graph runs in training.
        arguments: ``{"batch_norm_momentum": decay, "dropout_rate": rate}`` for the train graph (TF-Hub's
            defaults 0.997 and 0.2); nothing else.
        tags: None or ``set()``, or ``{"train"}`` (see above).
        signature: ``default``, ``image_classification`` or ``image_feature_vector``.
        signature_outputs_as_dict: True to give the signature's output dict (every end point, computed in the
            same pass); not with ``output_key``.
        output_key: the output to give: ``default`` or an end point, ``InceptionResnetV2/Mixed_6a`` (NHWC).
        output_shape, input_shape, name, dtype: Keras' layer options. ``output_shape`` and ``input_shape`` are
            checked against the module's, ``dtype`` goes to ``irv2.load`` with ``device``, ``engine``,
            ``offline`` and ``progress``.

    Raises:
        OptionError: a combination TF-Hub refuses (``output_key`` with ``signature_outputs_as_dict``), an unknown
            signature, tag set or argument, or a shape the module does not have.
        Irv2Error: weights that cannot be found, fetched or read (as ``irv2.load``).
    """

    def __init__(
        self,
        handle: str | os.PathLike[str],
        trainable: bool = False,
        arguments: Mapping[str, Any] | None = None,
        *,
        tags: Iterable[str] | None = None,
        signature: str | None = None,
        signature_outputs_as_dict: bool | None = None,
        output_key: str | None = None,
        output_shape: Iterable[int | None] | None = None,
        input_shape: Iterable[int | None] | None = None,
        load_options: Any = None,
        name: str | None = None,
        **irv2_load_options: Any,
    ) -> None:
        super().__init__()
        if load_options is not None:
            raise OptionError(
                "load_options: tf.saved_model.LoadOptions set how TensorFlow reads a SavedModel, and irv2 reads "
                "no TensorFlow graph: leave it out (device and engine are irv2.load's options, e.g. device='cuda')"
            )
        if signature_outputs_as_dict and output_key is not None:
            raise OptionError(
                "output_key and signature_outputs_as_dict: give one, output_key for a single output or "
                "signature_outputs_as_dict=True for the whole dict (TF-Hub refuses both together too)"
            )
        arguments = dict(arguments or {})
        unknown = sorted(set(arguments) - set(_ARGUMENTS))
        if unknown:
            raise OptionError(
                f"arguments {unknown}: the TF1 image modules take none of these; irv2 accepts {list(_ARGUMENTS)} "
                "for the train graph"
            )
        self.handle = handle
        self.arguments = arguments
        self.signature = signature or "default"
        self.signature_outputs_as_dict = bool(signature_outputs_as_dict)
        self.output_key = None if self.signature_outputs_as_dict else (output_key or "default")
        self._always_train = TRAIN in _tag_set(tags)
        self.name = name
        module = Module(handle, trainable=trainable, tags=tags, **irv2_load_options)
        module._resolve(self.signature)  # an unknown signature fails here, not at the first call
        self.module = module
        # Registered as a child, so that parameters(), state_dict(), to() and optimizers reach the network.
        self.network = module.model
        self._check_shapes(input_shape, output_shape)
        if self.arguments or self._always_train:
            self._configure_train_graph()
        self._set_graph(self.training)

    @property
    def trainable(self) -> bool:
        return self.module.trainable

    @property
    def tags(self) -> set[str]:
        """The graph the next call runs: ``{"train"}`` or ``set()``."""
        return self.module.tags

    @property
    def trainable_weights(self) -> list[torch.Tensor]:
        """Keras' name for the variables that train (empty unless ``trainable``)."""
        return self.module.trainable_variables

    @property
    def non_trainable_weights(self) -> list[torch.Tensor]:
        trainable = {id(tensor) for tensor in self.trainable_weights}
        return [tensor for tensor in self.module.variables if id(tensor) not in trainable]

    @property
    def weights(self) -> list[torch.Tensor]:
        return self.module.variables

    def train(self, mode: bool = True) -> KerasLayer:
        super().train(mode)  # sets the network's flags too; _set_graph puts each layer where TF-Hub's rules say
        self._set_graph(mode)
        return self

    def _set_graph(self, training: bool) -> None:
        self.module.train(self._always_train or (training and self.trainable))

    def _configure_train_graph(self) -> None:
        from ..api.train_graph import set_train_mode

        set_train_mode(self.network, **self.arguments)  # records decay and dropout for later switches
        self.module._hold_variables()  # set_train_mode makes everything trainable: TF-Hub's rules again

    def forward(self, inputs: Any) -> Any:
        # The signature's input dict, {"images": ...}, is checked by the module; numpy becomes a tensor, as Keras
        # makes its inputs tensors, so that the layer gives tensors to the next one.
        if isinstance(inputs, Mapping):
            images: Any = {key: _as_tensor(value) for key, value in inputs.items()}
        else:
            images = _as_tensor(inputs)
        in_graph = self.module.training or _needs_grad(images)
        # A frozen layer outside the train graph needs no autograd: the module's fused engine serves it.
        with contextlib.nullcontext() if in_graph else torch.no_grad():
            if self.output_key == "default":
                return self.module(images, signature=self.signature)
            outputs = self.module(images, signature=self.signature, as_dict=True)
            if self.signature_outputs_as_dict:
                return dict(outputs)
            if self.output_key not in outputs:
                raise OptionError(
                    f"output_key {self.output_key!r}: signature {self.signature!r} has no such output; it has "
                    f"{list(outputs)}"
                )
            return outputs[self.output_key]

    def _check_shapes(self, input_shape: Iterable[int | None] | None, output_shape: Any) -> None:
        """Keras' shape options, held against the module's: a wrong one is a mistake to say now, not at fit time."""
        if input_shape is not None:
            shape = tuple(input_shape)
            if len(shape) != 3 or shape[-1] != 3 or any(d is not None and d < 75 for d in shape[:2]):
                height, width = self.module.expected_image_size
                raise OptionError(
                    f"input_shape {shape}: this module takes images [height, width, 3], at least 75 x 75 "
                    f"(its weights expect [{height}, {width}, 3])"
                )
        if output_shape is not None and self.output_key == "default":
            have = self.module.get_output_info_dict(self.signature)["default"].get_shape().as_list()[1:]
            shape = list(output_shape)
            # None on either side (the module's file may leave a size unknown) agrees with any size.
            if len(shape) != len(have) or any(
                None not in (want, got) and want != got for want, got in zip(shape, have, strict=True)
            ):
                raise OptionError(
                    f"output_shape {tuple(shape)}: signature {self.signature!r} gives {tuple(have)} per image"
                )

    def extra_repr(self) -> str:
        return (
            f"handle={os.fspath(self.handle)!r}, trainable={self.trainable}, signature={self.signature!r}, "
            f"output_key={self.output_key!r}, tags={self.tags}"
        )


def _as_tensor(images: Any) -> Any:
    if isinstance(images, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    return images


def _needs_grad(images: Any) -> bool:
    if isinstance(images, Mapping):
        return any(_needs_grad(value) for value in images.values())
    return isinstance(images, torch.Tensor) and images.requires_grad
