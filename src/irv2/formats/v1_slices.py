"""V1 checkpoints (SavedTensorSlices, spec 6.5), e.g. TF-Slim's ``inception_resnet_v2_2016_08_30.ckpt``.

A single table file. Its ``""`` key holds the metadata (every tensor's name, shape, dtype and slices);
every other record is one slice of one tensor, values in a TensorProto's typed repeated field
(``float_val`` for float32) or in ``tensor_content``. The TensorProto carries no dtype or shape of its
own, so both come from the metadata, and slices are placed by their extents.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import CheckpointError
from . import _protobuf as pb
from ._tensors import SliceAssembler, base_dtype, extents_of, native_dtype, shape_of, to_native, wire_dtype
from .table import read_table

__all__ = ["read_v1"]

# DataType → (TensorProto field, how it is encoded): "fixed" fields are packed little-endian values of
# the given width, "varint" fields hold int32/int64/bool/bit patterns.
_VALUE_FIELDS: dict[int, tuple[int, str]] = {
    1: (5, "<f4"),  # float_val
    2: (6, "<f8"),  # double_val
    3: (7, "varint"),  # int_val
    4: (7, "varint"),
    5: (7, "varint"),
    6: (7, "varint"),
    8: (9, "<f4"),  # scomplex_val, (real, imag) pairs
    9: (10, "varint"),  # int64_val
    10: (11, "varint"),  # bool_val
    14: (13, "varint"),  # half_val holds bfloat16 bit patterns too
    17: (7, "varint"),
    18: (12, "<f8"),  # dcomplex_val
    19: (13, "varint"),  # half_val
    22: (16, "varint"),  # uint32_val
    23: (17, "varint"),  # uint64_val
}
_STRING_VAL = 8
_TENSOR_CONTENT = 4


def read_v1(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Reads every tensor of a V1 checkpoint file into ``{name: array}``.

    Shapes and dtypes come from the file's metadata; every element of every tensor must be stored
    exactly once. bfloat16 is widened to float32 and DT_STRING tensors come back as object arrays of
    ``bytes``. Raises ``CheckpointError`` naming ``path`` on any damage or foreign content.
    """
    rows = read_table(path)
    first = next(rows, None)
    if first is None:
        raise CheckpointError(path, "the table is empty: not a V1 checkpoint")
    if first[0] != b"":
        raise CheckpointError(path, "no metadata record (the empty key): not a V1 checkpoint")
    assemblers = _read_meta(path, first[1])
    for key, value in rows:
        try:
            record = pb.parse(value)
            if 2 not in record:
                raise pb.ProtoError("no slice data")
            saved = pb.message(record, 2)
            name = pb.string(saved, 1)
            if name not in assemblers:
                raise CheckpointError(path, f"data for tensor {name!r}, which the metadata does not list")
            dtype = assemblers[name][1]
            extents = extents_of(pb.message(saved, 2))
            values = _values(pb.message(saved, 3), dtype)
        except pb.ProtoError as exc:
            raise CheckpointError(path, f"corrupt record {key!r}: {exc}") from exc
        assemblers[name][0].add(extents, values)
    return {name: assembler.result() for name, (assembler, _) in assemblers.items()}


def _read_meta(path: str | os.PathLike[str], value: memoryview) -> dict[str, tuple[SliceAssembler, int]]:
    hint = " (a V2 .index file? read it with read_v2)" if os.fspath(path).endswith(".index") else ""
    try:
        record = pb.parse(value)
        if 1 not in record:
            raise pb.ProtoError("the metadata record has no meta field")
        tensors = pb.messages(pb.message(record, 1), 1)
        out: dict[str, tuple[SliceAssembler, int]] = {}
        for tensor in tensors:
            name = pb.string(tensor, 1)
            dtype = base_dtype(path, name, pb.uint(tensor, 3))
            shape = shape_of(pb.message(tensor, 2))
            out[name] = (SliceAssembler(path, name, shape, native_dtype(dtype)), dtype)
    except pb.ProtoError as exc:
        raise CheckpointError(path, f"not a V1 checkpoint: bad metadata record: {exc}{hint}") from exc
    return out


def _values(proto: pb.Fields, dtype: int) -> np.ndarray:
    """The flat values of a TensorProto whose dtype is known from elsewhere."""
    if dtype == 7:
        out = np.empty(len(proto.get(_STRING_VAL, [])), dtype=object)
        out[:] = pb.strings(proto, _STRING_VAL)
        return out
    wire = wire_dtype(dtype)
    content = pb.raw(proto, _TENSOR_CONTENT)
    if content:
        if len(content) % wire.itemsize:
            raise pb.ProtoError("tensor_content is not a whole number of values")
        return to_native(np.frombuffer(bytearray(content), dtype=wire), dtype)
    number, encoding = _VALUE_FIELDS[dtype]
    if encoding != "varint":
        values = pb.packed_fixed(proto, number, encoding)
        return values.view(wire.newbyteorder("=")) if wire.kind == "c" else values
    raw = pb.packed_varints(proto, number)
    if dtype in (10, 22, 23):
        return to_native(raw.astype(wire), dtype)
    if dtype in (14, 19):  # 16-bit patterns stored as int32
        bits = raw.astype(np.uint16)
        if not np.array_equal(bits, raw):
            raise pb.ProtoError("a half/bfloat16 bit pattern does not fit 16 bits")
        return to_native(bits.view(wire), dtype)
    signed = raw.view(np.int64)
    values = signed.astype(wire.newbyteorder("="))
    if not np.array_equal(values, signed):
        raise pb.ProtoError(f"an integer value does not fit {wire.name}")
    return values
