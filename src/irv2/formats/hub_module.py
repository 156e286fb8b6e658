"""TF1 Hub modules on disk (spec 4.3): ``tfhub_module.pb``, ``saved_model.pb`` and ``variables/``.

The weights are read from the V2 bundle at ``variables/variables``; of ``saved_model.pb`` only the tag sets and
their signatures' outputs are read (``saved_model.signature_outputs``), never the graphs.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import CheckpointError
from . import _protobuf as pb
from .saved_model import SignatureOutputs, signature_outputs
from .v2_bundle import read_v2

__all__ = ["hub_module_outputs", "hub_module_signatures", "is_hub_module", "read_hub_module"]

MODULE_DEF = "tfhub_module.pb"
SAVED_MODEL = "saved_model.pb"
_FORMAT_V3 = 3  # ModuleDef.Format.FORMAT_V3, the only format hub.Module has ever written


def is_hub_module(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a folder holding ``tfhub_module.pb`` (what tells a TF1 Hub module apart)."""
    return os.path.isfile(os.path.join(path, MODULE_DEF))


def read_hub_module(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Reads the variables of the TF1 Hub module folder ``path`` into ``{name: array}``.

    Names are as the module stores them, without the ``module/`` scope that ``hub.Module`` adds when
    it instantiates the graph. Raises ``CheckpointError`` if the folder is not a (FORMAT_V3) module or
    its variables are unreadable.
    """
    _check_module_def(path)
    if not os.path.isfile(os.path.join(path, SAVED_MODEL)):
        raise CheckpointError(path, f"TF-Hub module without {SAVED_MODEL}")
    prefix = os.path.join(path, "variables", "variables")
    if not os.path.isfile(prefix + ".index"):
        raise CheckpointError(path, "TF-Hub module without variables/variables.index")
    return read_v2(prefix)


def hub_module_signatures(path: str | os.PathLike[str]) -> dict[tuple[str, ...], list[str]]:
    """Signature names per tag set of the module's ``saved_model.pb``, e.g.
    ``{(): ["default", "image_classification", ...], ("train",): [...]}`` (tags and names sorted).
    """
    return {tags: sorted(signatures) for tags, signatures in hub_module_outputs(path).items()}


def hub_module_outputs(path: str | os.PathLike[str]) -> SignatureOutputs:
    """What the module's ``saved_model.pb`` declares each signature to output, per tag set: output keys with
    their dtype and shape (see ``saved_model.signature_outputs``). ``CheckpointError`` naming the file if it is
    missing, unreadable or not a SavedModel."""
    file = os.path.join(path, SAVED_MODEL)
    return signature_outputs(_read_bytes(file), file)


def _check_module_def(path: str | os.PathLike[str]) -> None:
    file = os.path.join(path, MODULE_DEF)
    data = _read_bytes(file)
    try:
        fields = pb.parse(data)
        fmt = pb.uint(fields, 1)
        features = pb.strings(fields, 2)
    except pb.ProtoError as exc:
        raise CheckpointError(file, f"not a TF-Hub ModuleDef: {exc}") from exc
    if fmt != _FORMAT_V3:
        raise CheckpointError(file, f"TF-Hub module format {fmt}; irv2 reads FORMAT_V3 (3) modules")
    if features:
        names = ", ".join(f.decode("utf-8", "replace") for f in features)
        raise CheckpointError(file, f"TF-Hub module requires features irv2 does not know: {names}")


def _read_bytes(file: str) -> bytes:
    try:
        with open(file, "rb") as f:
            return f.read()
    except OSError as exc:
        raise CheckpointError(file, f"cannot read: {exc.strerror or exc}") from exc
