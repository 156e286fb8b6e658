"""TF-Hub's API over irv2: TF1's (``hub.Module``, ``hub.load_module_spec``, ``hub.get_expected_image_size``) and
TF2's (``hub.load``, ``hub.KerasLayer``, a ``torch.nn.Module`` here).

TF1 and TF2 code written against ``google/imagenet/inception_resnet_v2/{classification,feature_vector}/1`` ports by
changing its import, with no TensorFlow::

    import irv2.tfhub as hub

    module = hub.Module("https://tfhub.dev/google/imagenet/inception_resnet_v2/classification/1")
    height, width = hub.get_expected_image_size(module)      # [299, 299]
    logits = module(images)                                  # numpy [B, 299, 299, 3] in [0, 1] -> [B, 1001]

There is no graph and no session: a call computes its outputs at once, so ``session.run(outputs)`` becomes the
call itself. Numpy in gives numpy out, computed without autograd; a ``torch.Tensor`` in gives tensors out,
differentiable when grad is enabled (what fine-tuning needs). ``hub.Module`` *is* an :class:`irv2.Module`, so
everything of irv2's API (``module.preprocess``, ``module.labels``, ``module.model``, ``irv2.save``) works on it.
TF2's ``hub.load(handle).signatures["default"](images=x)`` gives the output dict, and ``hub.KerasLayer(handle)``
goes in an ``nn.Sequential`` with a head. docs/migrating.md shows the common TF1 and TF2 snippets before and
after. Every other name of ``tensorflow_hub`` exists too, and raises an :class:`~irv2.errors.Irv2Error` saying
what to use instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .evaluation import eval_function_for_module
from .images import ImageModuleInfo, get_expected_image_size, get_num_image_channels
from .keras_layer import KerasLayer
from .loaded import load
from .module import Module
from .refused import INSTEAD, refusal
from .resolve import resolve
from .spec import ModuleSpec, load_module_spec

__all__ = [
    "ImageModuleInfo",
    "KerasLayer",
    "Module",
    "ModuleSpec",
    "eval_function_for_module",
    "get_expected_image_size",
    "get_num_image_channels",
    "load",
    "load_module_spec",
    "resolve",
]


def __getattr__(name: str) -> Callable[..., Any]:
    """TF-Hub's other names exist, so that ported code fails where it uses one, saying what to do instead."""
    if name not in INSTEAD:
        raise AttributeError(f"module 'irv2.tfhub' has no attribute {name!r}")
    return refusal(name)
