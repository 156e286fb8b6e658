"""irv2's own module folder: ``model.safetensors`` + ``irv2.json``.

Loading needs no conversion and no pickle: safetensors holds the state dict under irv2's (timm's) keys,
the JSON holds everything else a user needs to use the weights correctly (classes, labels, input size,
preprocessing, provenance). Both files are written to temporary names and renamed into place, so a
crash mid-save never leaves a folder that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import atomic_write, write_text
from ..errors import CheckpointError
from .safetensors_writer import write_safetensors

if TYPE_CHECKING:
    import torch

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "irv2.json"
FORMAT_NAME = "irv2-module"
FORMAT_VERSION = 1


def is_native_module(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def save_native(directory: str | os.PathLike[str], state_dict: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """Write a native module folder (created if needed; existing irv2 files are replaced atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_write(directory / WEIGHTS_FILE, "wb") as f:
        sha256 = write_safetensors(f, state_dict, {"format": "pt"})
    # safetensors has no checksum of its own; the config carries one so a damaged file is never used.
    full_config = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **config, "weights_sha256": sha256}
    write_text(directory / CONFIG_FILE, json.dumps(full_config, indent=2, ensure_ascii=False) + "\n")
    return directory


def read_native_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(directory) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, f"unreadable irv2 config ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise CheckpointError(path, f'not an irv2 module config (expected "format": "{FORMAT_NAME}")')
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            path, f"written by a newer irv2 (format version {config['format_version']}); upgrade irv2"
        )
    return config


def read_safetensors(path: str | os.PathLike[str], *, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """All tensors of a ``.safetensors`` file, with a clear error for a missing or damaged one.

    With ``sha256`` (as ``irv2.save`` records it), the file must match it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file not found")
    try:
        # One sequential read beats page-faulting a memory map tensor by tensor, and the checksum reads it anyway.
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(path, f"cannot read ({exc.strerror or exc})") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise CheckpointError(path, "checksum mismatch: the file is damaged; delete it and save or convert again")
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(data)
    except (SafetensorError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(path, f"not a readable safetensors file ({exc})") from None
    # safetensors leaves each tensor in a bytes object of its own, 16-byte aligned at best; a copy gives it
    # storage of its own, aligned as oneDNN's kernels want.
    return {name: tensor.clone() for name, tensor in tensors.items()}
