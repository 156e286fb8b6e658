"""Just enough of the protobuf wire format to read checkpoint metadata without the protobuf library.

A message decodes to ``{field_number: [value, ...]}`` in wire order. Varint and fixed fields give ``int``
(unsigned, as on the wire), length-delimited fields give a ``memoryview`` into the input, so the
megabytes of a packed ``float_val`` are never copied. Typed views (signed ints, packed arrays,
sub-messages, strings) are taken by the helpers below, which know the field's declared type.
"""

from __future__ import annotations

import numpy as np

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5

Fields = dict[int, list]


class ProtoError(ValueError):
    """Malformed protobuf bytes. Callers turn it into a ``CheckpointError`` that names the file."""


def read_varint(buf: memoryview | bytes, pos: int) -> tuple[int, int]:
    """Decodes the varint at ``pos``; returns ``(value, position after it)``."""
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise ProtoError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtoError("varint longer than 10 bytes")


def parse(buf: memoryview | bytes) -> Fields:
    """Splits one message into its fields; unknown fields are kept and simply never asked for."""
    view = memoryview(buf)
    if view.format != "B":
        view = view.cast("B")
    fields: Fields = {}
    pos = 0
    end = len(view)
    while pos < end:
        tag, pos = read_varint(view, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ProtoError("field number 0")
        if wire == VARINT:
            value, pos = read_varint(view, pos)
        elif wire in (FIXED64, FIXED32):
            width = 8 if wire == FIXED64 else 4
            if pos + width > end:
                raise ProtoError(f"truncated fixed{width * 8} field {number}")
            value = int.from_bytes(view[pos : pos + width], "little")
            pos += width
        elif wire == LENGTH:
            length, pos = read_varint(view, pos)
            if pos + length > end:
                raise ProtoError(f"field {number} runs {pos + length - end} bytes past its message")
            value = view[pos : pos + length]
            pos += length
        else:  # 3 and 4 are the long-deprecated groups, 6 and 7 do not exist
            raise ProtoError(f"unsupported wire type {wire} in field {number}")
        fields.setdefault(number, []).append(value)
    return fields


def _expect(value: object, kind: type, number: int, what: str) -> None:
    if not isinstance(value, kind):
        raise ProtoError(f"field {number} should be {what}")


def uint(fields: Fields, number: int, default: int = 0) -> int:
    """Last value of a scalar varint field (proto3: a repeated scalar keeps the last one)."""
    values = fields.get(number)
    if not values:
        return default
    _expect(values[-1], int, number, "a varint")
    return values[-1]


def int64(fields: Fields, number: int, default: int = 0) -> int:
    """A signed int32/int64 field: negative values arrive as 64-bit two's complement."""
    value = uint(fields, number, default)
    return value - (1 << 64) if value >= 1 << 63 else value


def fixed32(fields: Fields, number: int, default: int = 0) -> int:
    values = fields.get(number)
    if not values:
        return default
    _expect(values[-1], int, number, "a fixed32")
    return values[-1]


def message(fields: Fields, number: int) -> Fields:
    """A singular sub-message (absent → empty: every field at its default)."""
    values = fields.get(number)
    if not values:
        return {}
    return messages_of(values[-1:], number)[0]


def messages(fields: Fields, number: int) -> list[Fields]:
    """A repeated sub-message field."""
    return messages_of(fields.get(number, []), number)


def messages_of(values: list, number: int) -> list[Fields]:
    out = []
    for value in values:
        _expect(value, memoryview, number, "a message")
        out.append(parse(value))
    return out


def raw(fields: Fields, number: int) -> bytes:
    """A bytes field (absent → ``b""``)."""
    values = fields.get(number)
    if not values:
        return b""
    _expect(values[-1], memoryview, number, "length-delimited")
    return values[-1].tobytes()


def string(fields: Fields, number: int) -> str:
    """A string field, which protobuf requires to be UTF-8."""
    try:
        return raw(fields, number).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtoError(f"field {number} is not UTF-8 text") from exc


def strings(fields: Fields, number: int) -> list[bytes]:
    """A repeated bytes/string field, as bytes."""
    values = fields.get(number, [])
    for value in values:
        _expect(value, memoryview, number, "length-delimited")
    return [value.tobytes() for value in values]


def packed_fixed(fields: Fields, number: int, dtype: str) -> np.ndarray:
    """A repeated fixed-width field (``float``, ``double``, ``fixed32``…), packed or not.

    ``dtype`` is the little-endian wire type, e.g. ``"<f4"``; the result is a new native array.
    """
    width = np.dtype(dtype).itemsize
    parts = []
    singles: list[int] = []
    for value in fields.get(number, []):
        if isinstance(value, memoryview):
            if singles:
                parts.append(_fixed_from_ints(singles, dtype, number))
                singles = []
            if len(value) % width:
                raise ProtoError(f"packed field {number} is not a whole number of {width}-byte items")
            parts.append(np.frombuffer(value, dtype=dtype))
        else:
            singles.append(value)
    if singles:
        parts.append(_fixed_from_ints(singles, dtype, number))
    if not parts:
        return np.zeros(0, dtype=np.dtype(dtype).newbyteorder("="))
    joined = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
    return joined.astype(joined.dtype.newbyteorder("="), copy=False)


def _fixed_from_ints(values: list[int], dtype: str, number: int) -> np.ndarray:
    width = np.dtype(dtype).itemsize
    unsigned = "<u4" if width == 4 else "<u8"
    try:
        return np.array(values, dtype=unsigned).view(dtype)
    except OverflowError as exc:
        raise ProtoError(f"field {number}: wrong wire type for a {width}-byte value") from exc


def packed_varints(fields: Fields, number: int) -> np.ndarray:
    """A repeated varint field (int32, int64, bool, enum…), packed or not, as uint64 wire values.

    Reinterpret as int64 (``.view(np.int64)``) for signed types: protobuf writes negative int32 and
    int64 alike as ten-byte two's complement.
    """
    parts = []
    singles: list[int] = []
    for value in fields.get(number, []):
        if isinstance(value, memoryview):
            if singles:
                parts.append(np.array(singles, dtype=np.uint64))
                singles = []
            parts.append(_decode_packed_varints(value, number))
        else:
            singles.append(value)
    if singles:
        parts.append(np.array(singles, dtype=np.uint64))
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    return np.concatenate(parts)


def _decode_packed_varints(buf: memoryview, number: int) -> np.ndarray:
    """Vectorised varint decoding: a varint ends at each byte below 0x80."""
    data = np.frombuffer(buf, dtype=np.uint8)
    if data.size == 0:
        return np.zeros(0, dtype=np.uint64)
    ends = np.flatnonzero(data < 0x80)
    if ends.size == 0 or ends[-1] != data.size - 1:
        raise ProtoError(f"packed field {number} ends inside a varint")
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > 10:
        raise ProtoError(f"packed field {number} holds a varint longer than 10 bytes")
    position = np.arange(data.size) - np.repeat(starts, lengths)
    groups = (data & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    return np.add.reduceat(groups, starts).astype(np.uint64)
