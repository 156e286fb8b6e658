"""Readers of TensorFlow checkpoint files in pure Python + numpy: names in, numpy arrays out.

No TensorFlow, no torch and no knowledge of the network here. ``read_checkpoint`` recognises the
format; the per-format readers are ``read_v1`` (TF-Slim's SavedTensorSlices ``.ckpt``), ``read_v2``
(TensorBundle ``.index`` + ``.data-*``) and ``read_hub_module`` (a TF1 Hub module folder), whose
signatures' declared outputs ``hub_module_outputs`` reads (``read_checkpoint_contents`` gives both). Every
failure on bad input is an ``irv2.errors.CheckpointError`` that names the file and the problem.
"""

from .archive import extract_archive, find_checkpoint, is_archive
from .checkpoint import FORMAT_HUB, FORMAT_V1, FORMAT_V2, CheckpointContents, read_checkpoint, read_checkpoint_contents
from .crc32c import crc32c
from .hub_module import hub_module_outputs, hub_module_signatures, is_hub_module, read_hub_module
from .saved_model import DeclaredTensor, SignatureOutputs
from .table import has_table_footer, read_table
from .v1_slices import read_v1
from .v2_bundle import read_v2, resolve_v2_prefix

__all__ = [
    "FORMAT_HUB",
    "FORMAT_V1",
    "FORMAT_V2",
    "CheckpointContents",
    "DeclaredTensor",
    "SignatureOutputs",
    "crc32c",
    "extract_archive",
    "find_checkpoint",
    "has_table_footer",
    "hub_module_outputs",
    "hub_module_signatures",
    "is_archive",
    "is_hub_module",
    "read_checkpoint",
    "read_checkpoint_contents",
    "read_hub_module",
    "read_table",
    "read_v1",
    "read_v2",
    "resolve_v2_prefix",
]
