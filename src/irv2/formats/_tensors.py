"""What the V1 and V2 readers share: TF dtypes as numpy dtypes, shapes, and assembling slices."""

from __future__ import annotations

import math
import os

import numpy as np

from ..errors import CheckpointError
from . import _protobuf as pb

DT_FLOAT, DT_STRING, DT_BOOL, DT_BFLOAT16 = 1, 7, 10, 14

# DataType enum → (name, little-endian numpy code of the stored bytes). Ref types are these + 100.
_DTYPES: dict[int, tuple[str, str | None]] = {
    1: ("float32", "<f4"),
    2: ("float64", "<f8"),
    3: ("int32", "<i4"),
    4: ("uint8", "|u1"),
    5: ("int16", "<i2"),
    6: ("int8", "|i1"),
    7: ("string", None),
    8: ("complex64", "<c8"),
    9: ("int64", "<i8"),
    10: ("bool", "|u1"),
    11: ("qint8", None),
    12: ("quint8", None),
    13: ("qint32", None),
    14: ("bfloat16", "<u2"),
    15: ("qint16", None),
    16: ("quint16", None),
    17: ("uint16", "<u2"),
    18: ("complex128", "<c16"),
    19: ("float16", "<f2"),
    20: ("resource", None),
    21: ("variant", None),
    22: ("uint32", "<u4"),
    23: ("uint64", "<u8"),
}

Extent = tuple[int, int | None]  # (start, length); length None = to the end of the dimension


def base_dtype(path: str | os.PathLike[str], name: str, dtype: int) -> int:
    """The plain DataType of a tensor (ref types are +100), or a ``CheckpointError`` if not readable."""
    base = dtype - 100 if dtype > 100 else dtype
    if base == DT_STRING:
        return base
    entry = _DTYPES.get(base)
    if entry is None or entry[1] is None:
        label = f"DT_{entry[0].upper()} ({dtype})" if entry else f"unknown DataType {dtype}"
        raise CheckpointError(path, f"tensor {name!r} has dtype {label}, which irv2 does not read")
    return base


def dtype_name(dtype: int) -> str | None:
    """TF's name of DataType ``dtype`` (``float32``...; a ref type, + 100, is named as its base), or None for a
    number TF does not define."""
    entry = _DTYPES.get(dtype - 100 if dtype > 100 else dtype)
    return entry[0] if entry else None


def wire_dtype(dtype: int, big_endian: bool = False) -> np.dtype:
    """The numpy dtype of the stored bytes of a (base, non-string) DataType."""
    code = _DTYPES[dtype][1]
    assert code is not None
    wire = np.dtype(code)
    return wire.newbyteorder(">") if big_endian and wire.itemsize > 1 else wire


def native_dtype(dtype: int) -> np.dtype:
    """The numpy dtype that readers return for a base DataType."""
    if dtype == DT_STRING:
        return np.dtype(object)
    if dtype == DT_BOOL:
        return np.dtype(bool)
    if dtype == DT_BFLOAT16:
        return np.dtype(np.float32)
    return wire_dtype(dtype).newbyteorder("=")


def to_native(values: np.ndarray, dtype: int) -> np.ndarray:
    """Stored values → the array returned to callers: native byte order, bool as bool.

    bfloat16 has no numpy dtype, so it is widened to float32, which holds every bfloat16 exactly.
    """
    if values.dtype.byteorder == ">":
        values = values.astype(values.dtype.newbyteorder("="))
    if dtype == DT_BOOL:
        return values != 0
    if dtype == DT_BFLOAT16:
        return (values.astype(np.uint32) << 16).view(np.float32)
    return values


def shape_of(fields: pb.Fields) -> tuple[int, ...]:
    """A TensorShapeProto (dim = field 2, each with size = field 1; unknown_rank = field 3)."""
    if pb.uint(fields, 3):
        raise pb.ProtoError("the shape has unknown rank")
    dims = tuple(pb.int64(dim, 1) for dim in pb.messages(fields, 2))
    if any(d < 0 for d in dims):
        raise pb.ProtoError(f"the shape {list(dims)} has an unknown dimension")
    return dims


def extents_of(fields: pb.Fields) -> list[Extent]:
    """A TensorSliceProto: repeated Extent (field 1) of start (1) and optional length (2)."""
    out: list[Extent] = []
    for extent in pb.messages(fields, 1):
        length = pb.int64(extent, 2) if 2 in extent else None
        out.append((pb.int64(extent, 1), length))
    return out


class SliceAssembler:
    """Collects the slices of one tensor and checks that every element arrives exactly once."""

    def __init__(self, path: str | os.PathLike[str], name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path = path
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.array: np.ndarray | None = None
        self.covered: np.ndarray | None = None  # only allocated once a partial slice arrives

    def add(self, extents: list[Extent], values: np.ndarray) -> None:
        """Places ``values`` (flat, row-major) at ``extents``; ``[]`` means the whole tensor."""
        region = self._region(extents)
        lengths = tuple(s.stop - s.start for s in region)
        if values.size != math.prod(lengths):
            raise CheckpointError(
                self.path,
                f"tensor {self.name!r}: a slice of shape {list(lengths)} holds {values.size} values",
            )
        values = values.reshape(lengths)
        if lengths == self.shape and self.array is None:
            self.array = values  # the usual case: one slice that is the whole tensor
            return
        if self.array is None:
            self.array = np.empty(self.shape, dtype=self.dtype)
            self.covered = np.zeros(self.shape, dtype=bool)
        elif self.covered is None:
            self._duplicate()
        assert self.covered is not None
        if self.covered[region].any():
            self._duplicate()
        self.array[region] = values
        self.covered[region] = True

    def result(self) -> np.ndarray:
        if self.array is None:
            if math.prod(self.shape) == 0:
                return np.zeros(self.shape, dtype=self.dtype)
            raise CheckpointError(self.path, f"tensor {self.name!r} is listed but has no data")
        if self.covered is not None and not self.covered.all():
            missing = int(self.covered.size - self.covered.sum())
            raise CheckpointError(self.path, f"tensor {self.name!r}: {missing} elements are in no saved slice")
        return self.array

    def _region(self, extents: list[Extent]) -> tuple[slice, ...]:
        if not extents:
            return tuple(slice(0, d) for d in self.shape)
        if len(extents) != len(self.shape):
            raise CheckpointError(
                self.path,
                f"tensor {self.name!r}: a slice of rank {len(extents)} for shape {list(self.shape)}",
            )
        region = []
        for (start, length), dim in zip(extents, self.shape, strict=True):
            stop = dim if length is None or length < 0 else start + length
            if not 0 <= start <= stop <= dim:
                raise CheckpointError(
                    self.path,
                    f"tensor {self.name!r}: slice {extents} lies outside shape {list(self.shape)}",
                )
            region.append(slice(start, stop))
        return tuple(region)

    def _duplicate(self) -> None:
        raise CheckpointError(self.path, f"tensor {self.name!r}: overlapping slices")
