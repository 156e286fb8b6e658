"""Keras' HDF5 weight files (``model.save_weights``/``model.save`` in the ``.h5`` layout).

The layout: an attribute ``layer_names`` on the root (or on ``model_weights`` for a whole saved model),
one group per layer with an attribute ``weight_names`` that lists its datasets in the layer's own
weight order. Needs ``h5py`` (``pip install irv2[keras]``), imported only when such a file is read.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import CheckpointError
from ..extras import require_extra

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path: str | os.PathLike[str]) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def read_keras_h5(path: str | os.PathLike[str]) -> dict[str, list[np.ndarray]]:
    """``{layer name: [weights in the layer's order]}`` for every layer that has weights."""
    require_extra("keras", f"{path}: reading Keras .h5 weights")
    import h5py

    try:
        with h5py.File(path, "r") as f:
            root = f.get("model_weights", f)
            if "layer_names" not in root.attrs:
                raise CheckpointError(path, "an HDF5 file, but not Keras weights (no layer_names attribute)")
            layers = {}
            for layer_name in map(_text, root.attrs["layer_names"]):
                group = root[layer_name]
                names = [_text(n) for n in group.attrs.get("weight_names", [])]
                if names:
                    layers[layer_name] = [np.asarray(group[name], dtype=np.float32) for name in names]
            return layers
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(path, f"unreadable Keras HDF5 weights ({exc})") from None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
