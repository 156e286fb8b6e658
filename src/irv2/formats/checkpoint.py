"""``read_checkpoint``: one entry point that recognises which TensorFlow format a path holds."""

from __future__ import annotations

import os
import tempfile
from typing import NamedTuple

import numpy as np

from ..errors import CheckpointError
from .archive import extract_archive, find_checkpoint, is_archive
from .hub_module import hub_module_outputs, is_hub_module, read_hub_module
from .saved_model import SignatureOutputs
from .table import has_table_footer
from .v1_slices import read_v1
from .v2_bundle import is_data_shard, read_v2, resolve_v2_prefix

__all__ = ["FORMAT_HUB", "FORMAT_V1", "FORMAT_V2", "CheckpointContents", "read_checkpoint", "read_checkpoint_contents"]

FORMAT_HUB = "tf-hub-module"
FORMAT_V2 = "tf-checkpoint-v2"
FORMAT_V1 = "tf-checkpoint-v1"

EXPECTED = (
    "expected a V1 .ckpt file, a V2 checkpoint prefix (or its .index), a TF-Hub module folder, or a .tar.gz of one"
)


class CheckpointContents(NamedTuple):
    """What ``read_checkpoint_contents`` reads: the tensors, the format's name, and what the signatures of a TF-Hub
    module's ``saved_model.pb`` declare they output (``{}`` for a checkpoint, which has no signatures)."""

    tensors: dict[str, np.ndarray]
    format: str
    signature_outputs: SignatureOutputs


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], str]:
    """Reads every tensor of the TensorFlow checkpoint at ``path``.

    ``path`` may be a TF-Hub module folder, a V2 prefix, ``.index`` or data shard, a folder holding
    one checkpoint, a V1 checkpoint file, or a tarball of any of these (extracted to a temporary
    folder that is removed before returning). Returns ``(tensors, format)`` with ``tensors`` mapping
    TF variable names to numpy arrays in their stored shapes and ``format`` one of
    ``"tf-hub-module"``, ``"tf-checkpoint-v2"``, ``"tf-checkpoint-v1"``. Raises ``CheckpointError``
    (naming the file and the problem) for anything else.
    """
    contents = read_checkpoint_contents(path)
    return contents.tensors, contents.format


def read_checkpoint_contents(path: str | os.PathLike[str]) -> CheckpointContents:
    """As :func:`read_checkpoint`, with the outputs a TF-Hub module's signatures declare (read while an archive's
    copy is still there): ``{tags: {signature: {key: DeclaredTensor}}}``, ``{}`` for other formats."""
    p = os.fspath(path)
    if os.path.isdir(p):
        if is_hub_module(p):
            return CheckpointContents(read_hub_module(p), FORMAT_HUB, hub_module_outputs(p))
        try:
            empty = not os.listdir(p)
        except OSError as exc:
            raise CheckpointError(p, f"cannot list the folder: {exc.strerror or exc}") from exc
        if empty:
            raise CheckpointError(p, f"empty folder; {EXPECTED}")
        return read_checkpoint_contents(find_checkpoint(p))
    if not p.endswith(".index") and os.path.isfile(p + ".index"):
        return CheckpointContents(read_v2(p), FORMAT_V2, {})
    if not os.path.exists(p):
        raise CheckpointError(p, f"no such file or folder (and no {os.path.basename(p)}.index); {EXPECTED}")
    if not os.path.isfile(p):
        raise CheckpointError(p, f"not a regular file; {EXPECTED}")
    if os.path.getsize(p) == 0:
        raise CheckpointError(p, f"empty file; {EXPECTED}")
    if p.endswith(".index"):
        return CheckpointContents(read_v2(p), FORMAT_V2, {})
    if is_data_shard(p):
        return CheckpointContents(read_v2(resolve_v2_prefix(p)), FORMAT_V2, {})
    if has_table_footer(p):
        return CheckpointContents(read_v1(p), FORMAT_V1, {})
    if is_archive(p):
        return _read_archive(p)
    raise CheckpointError(p, f"not a TensorFlow checkpoint: no table footer magic; {EXPECTED}")


def _read_archive(archive: str) -> CheckpointContents:
    with tempfile.TemporaryDirectory(prefix="irv2-") as tmp:
        extract_archive(archive, tmp)
        found = find_checkpoint(tmp, label=archive)
        try:
            return read_checkpoint_contents(found)
        except CheckpointError as exc:
            inner = os.path.relpath(exc.path, tmp) if exc.path.startswith(tmp) else exc.path
            raise CheckpointError(archive, f"{inner} (in the archive): {exc.problem}") from exc
