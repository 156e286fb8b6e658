"""The signatures a ``saved_model.pb`` declares: per tag set, each signature's output keys with their dtype and
shape, read from the SavedModel proto without TensorFlow.

Only the few fields on the way are decoded; the graphs themselves stay unparsed bytes. Field numbers are those of
TensorFlow's ``saved_model.proto``, ``meta_graph.proto`` and ``tensor_shape.proto``.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from ..errors import CheckpointError
from . import _protobuf as pb
from ._tensors import dtype_name

__all__ = ["DeclaredTensor", "SignatureOutputs", "signature_outputs"]

# SavedModel.meta_graphs; MetaGraphDef.meta_info_def (whose tags = 4) and signature_def (a map); SignatureDef.outputs
# (a map); TensorInfo's encodings (a oneof: name, coo_sparse, composite_tensor), dtype and tensor_shape.
_META_GRAPHS = 2
_META_INFO_DEF, _TAGS, _SIGNATURE_DEF = 1, 4, 5
_OUTPUTS = 2
_NAME, _DTYPE, _TENSOR_SHAPE, _COO_SPARSE, _COMPOSITE = 1, 2, 3, 4, 5
_MAP_KEY, _MAP_VALUE = 1, 2
_DIM, _DIM_SIZE, _UNKNOWN_RANK = 2, 1, 3


class DeclaredTensor(NamedTuple):
    """One output as the file declares it.

    Attributes:
        dtype: TF's name of its DataType (``float32``, ``int64``, ``string``...); ``invalid`` when unset, and
            ``DataType <n>`` for a number TF does not define.
        shape: its dimensions, None for each unknown one (TF writes -1); None altogether for unknown rank.
        encoding: ``dense`` (a tensor by name), ``coo_sparse`` (a SparseTensor) or ``composite_tensor``.
    """

    dtype: str
    shape: tuple[int | None, ...] | None
    encoding: str = "dense"


# {tags (sorted): {signature: {output key: DeclaredTensor}}}
SignatureOutputs = dict[tuple[str, ...], dict[str, dict[str, DeclaredTensor]]]


def signature_outputs(data: bytes, file: str | os.PathLike[str]) -> SignatureOutputs:
    """The outputs of every signature of ``data``, the bytes of the SavedModel ``file``, per tag set: e.g. for a
    TF1 Hub module ``{(): {"default": {"default": DeclaredTensor("float32", (None, 1001))}, ...}, ("train",): ...}``.

    A tag set whose graph declares no signatures maps to ``{}``. Raises ``CheckpointError`` naming ``file`` if the
    bytes are not a SavedModel proto (truncated, corrupt, or some other file).
    """
    try:
        out: SignatureOutputs = {}
        for graph in pb.messages(pb.parse(data), _META_GRAPHS):
            tags = pb.strings(pb.message(graph, _META_INFO_DEF), _TAGS)
            signatures = _map_of(graph, _SIGNATURE_DEF)
            out[tuple(sorted(tag.decode("utf-8") for tag in tags))] = {
                name: {key: _declared(info) for key, info in _map_of(signature, _OUTPUTS).items()}
                for name, signature in signatures.items()
            }
    except (pb.ProtoError, UnicodeDecodeError) as exc:
        raise CheckpointError(file, f"not a SavedModel: {exc}") from exc
    return out


def _map_of(fields: pb.Fields, number: int) -> dict[str, pb.Fields]:
    """A ``map<string, Message>`` field as ``{key: message}``; a key given twice keeps its last value, as
    protobuf's own parsers do."""
    entries = pb.messages(fields, number)
    return {pb.string(entry, _MAP_KEY): pb.message(entry, _MAP_VALUE) for entry in entries}


def _declared(info: pb.Fields) -> DeclaredTensor:
    """A TensorInfo message."""
    if _COO_SPARSE in info:
        encoding = "coo_sparse"
    elif _COMPOSITE in info:
        encoding = "composite_tensor"
    else:
        encoding = "dense"
    return DeclaredTensor(_dtype_name(pb.uint(info, _DTYPE)), _shape(pb.message(info, _TENSOR_SHAPE)), encoding)


def _dtype_name(number: int) -> str:
    if number == 0:
        return "invalid"  # DT_INVALID: proto3 leaves the field out
    return dtype_name(number) or f"DataType {number}"


def _shape(fields: pb.Fields) -> tuple[int | None, ...] | None:
    """A TensorShapeProto; -1 (any negative size) is an unknown dimension."""
    if pb.uint(fields, _UNKNOWN_RANK):
        return None
    sizes = (pb.int64(dim, _DIM_SIZE) for dim in pb.messages(fields, _DIM))
    return tuple(size if size >= 0 else None for size in sizes)
