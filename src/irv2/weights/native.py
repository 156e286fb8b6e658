"""irv2's own module folder: ``model.safetensors`` + ``irv2.json``.

Loading needs no conversion and no pickle: safetensors holds the state dict under irv2's (timm's) keys,
the JSON holds everything else a user needs to use the weights correctly (classes, labels, input size,
preprocessing, provenance). Both files are written to temporary names and renamed into place, so a
crash mid-save never leaves a folder that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "irv2.json"
FORMAT_NAME = "irv2-module"
FORMAT_VERSION = 1


def is_native_module(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def save_native(directory: str | os.PathLike[str], state_dict: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """Write a native module folder (created if needed; existing irv2 files are replaced atomically)."""
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    data = save(tensors, metadata={"format": "pt"})
    # safetensors has no checksum of its own; the config carries one so a damaged file is never used.
    full_config = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **config,
                   "weights_sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
    _atomic_write(directory / WEIGHTS_FILE, lambda tmp: Path(tmp).write_bytes(data))
    text = json.dumps(full_config, indent=2, ensure_ascii=False) + "\n"
    _atomic_write(directory / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
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
        # One sequential read beats page-faulting a memory map tensor by tensor (2.7 s → 0.4 s here).
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(path, f"cannot read ({exc.strerror or exc})") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise CheckpointError(path, "checksum mismatch: the file is damaged; delete it and save or convert again")
    try:
        return _parse_safetensors(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(path, f"not a readable safetensors file ({exc})") from None


# safetensors dtype names → torch dtypes (the subset a network's state dict uses).
_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _parse_safetensors(data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file held in ``data`` (the format: an 8-byte little-endian header length,
    a JSON header of ``{name: {dtype, shape, data_offsets}}``, then the raw little-endian tensor bytes).

    Parsed here rather than by ``safetensors.torch.load``, which copies every tensor twice on the way: each
    tensor is copied once, straight from the file's bytes into aligned storage of its own (tensors viewing
    the bytes at the file's offsets make convolutions several times slower).
    """
    if len(data) < 8:
        raise ValueError("shorter than its 8-byte header length")
    header_length = int.from_bytes(data[:8], "little")
    if header_length > len(data) - 8:
        raise ValueError(f"header length {header_length} runs past the end of the file ({len(data)} bytes)")
    header = json.loads(data[8 : 8 + header_length])
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    body = memoryview(data)[8 + header_length :]
    tensors: dict[str, torch.Tensor] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"{name}: unsupported dtype {entry['dtype']}")
        shape = [int(n) for n in entry["shape"]]
        start, end = (int(n) for n in entry["data_offsets"])
        expected = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        if not 0 <= start <= end <= len(body) or end - start != expected:
            raise ValueError(f"{name}: byte range [{start}, {end}) does not hold a {entry['dtype']} {shape} tensor")
        tensor = torch.empty(shape, dtype=dtype)
        if expected:
            tensor.view(-1).view(torch.uint8).numpy()[:] = np.frombuffer(body[start:end], dtype=np.uint8)
        tensors[name] = tensor
    return tensors


def _atomic_write(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
