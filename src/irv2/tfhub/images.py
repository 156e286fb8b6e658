"""TF-Hub's image-module helpers: ``hub.get_expected_image_size``, ``hub.get_num_image_channels`` and
``hub.ImageModuleInfo``, read as TF-Hub's ``image_util`` reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import OptionError

IMAGES = "images"
# The key TF-Hub attaches an ImageModuleInfo under (modules from v3 on, with variable input size, attach one).
IMAGE_MODULE_INFO_KEY = "image_module_info"


@dataclass
class ImageSize:
    """``ImageModuleInfo.default_image_size``: zero where unset, as a protocol buffer's fields are."""

    height: int = 0
    width: int = 0


@dataclass
class ImageModuleInfo:
    """``hub.ImageModuleInfo``: what an image module may attach about itself, its ``default_image_size``
    (TF-Hub's message of that name, as a small record)."""

    default_image_size: ImageSize = field(default_factory=ImageSize)

    def HasField(self, name: str) -> bool:
        """Whether ``name`` (``"default_image_size"``) is set, as on TF-Hub's message."""
        if name != "default_image_size":
            raise ValueError(f"ImageModuleInfo has no field {name!r}; it has 'default_image_size'")
        return bool(self.default_image_size.height or self.default_image_size.width)


def _attached_size(module_or_spec: Any) -> list[int] | None:
    """The size an attached ImageModuleInfo gives, TF-Hub's first place to look; None where none is attached."""
    ask = getattr(module_or_spec, "get_attached_message", None)
    info = ask(IMAGE_MODULE_INFO_KEY, ImageModuleInfo) if ask is not None else None
    if info is not None and info.default_image_size.height and info.default_image_size.width:
        return [info.default_image_size.height, info.default_image_size.width]
    return None


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
    size), found as TF-Hub finds it: an attached :class:`ImageModuleInfo` first (the ``/1`` modules attach
    none), then the ``images`` input's shape. Takes a :class:`Module`, an :class:`irv2.Module` or a
    :class:`ModuleSpec`."""
    attached = _attached_size(module_or_spec)
    shape = _image_input(module_or_spec, signature, input_name)  # checks the signature and input name either way
    return attached if attached is not None else shape[1:3]


def get_num_image_channels(module_or_spec: Any, signature: str | None = None, input_name: str | None = None) -> int:
    """The number of colour channels the module takes: 3 (RGB)."""
    return _image_input(module_or_spec, signature, input_name)[3]
