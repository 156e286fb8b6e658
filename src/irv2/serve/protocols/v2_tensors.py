"""Tensors of the Open Inference Protocol v2: datatypes, Triton's binary tensor data extension, BYTES coding.

With the binary extension a body is a JSON header followed by raw tensor bytes; the
``Inference-Header-Content-Length`` header gives the JSON's length, and each binary tensor says its size in
``parameters.binary_data_size``, in the order the tensors appear. Numbers are little-endian, row-major.
A BYTES tensor in binary is each element as a 4-byte little-endian length followed by its bytes; in JSON
its elements are strings, here base64 (image files are not text), as KServe's image examples send them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ...errors import RequestError

HEADER_LENGTH = "Inference-Header-Content-Length"

#: The float datatypes accepted for images; other v2 datatypes are refused with a 400.
FLOAT_DTYPES = {"FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON part and the binary part of a request body (no binary part without the header)."""
    if header_length is None:
        return body, memoryview(b"")
    try:
        length = int(header_length)
    except ValueError:
        raise RequestError(f"{HEADER_LENGTH} must be a whole number, got {header_length!r}") from None
    if not 0 <= length <= len(body):
        raise RequestError(f"{HEADER_LENGTH} {length} does not fit a body of {len(body)} bytes")
    return body[:length], memoryview(body)[length:]


class BinaryReader:
    """Hands out the binary part of a request, tensor by tensor, in order."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._offset = 0

    def take(self, size: Any, what: str) -> memoryview:
        """The next ``size`` bytes for tensor ``what``."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise RequestError(f"{what}: binary_data_size must be a non-negative integer, got {size!r}")
        if self._offset + size > len(self._data):
            raise RequestError(f"{what}: binary_data_size {size} runs past the end of the body")
        chunk = self._data[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def check_consumed(self) -> None:
        """Refuse bytes that no tensor claimed: a sign of a wrong header length or size."""
        left = len(self._data) - self._offset
        if left:
            raise RequestError(f"{left} bytes of binary data after the JSON header belong to no input")


def check_shape(shape: Any, what: str) -> list[int]:
    """A v2 ``shape``: a list of non-negative integers."""
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise RequestError(f"{what}: shape must be a list of non-negative integers, got {shape!r}")
    return shape


def decode_bytes_elements(raw: memoryview, what: str) -> list[bytes]:
    """A serialized BYTES tensor (length-prefixed elements) → its elements."""
    elements: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise RequestError(f"{what}: BYTES data ends inside an element's 4-byte length")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise RequestError(f"{what}: BYTES element of {length} bytes runs past the end of its data")
        elements.append(bytes(raw[offset : offset + length]))
        offset += length
    return elements


def encode_bytes_elements(elements: Sequence[bytes]) -> bytes:
    """Elements → a serialized BYTES tensor, as tritonclient's ``deserialize_bytes_tensor`` reads it."""
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def flatten(data: Any) -> Iterator[Any]:
    """The leaves of a nested JSON list, in row-major order (``data`` may be flat or nested)."""
    if isinstance(data, list):
        for item in data:
            yield from flatten(item)
    else:
        yield data


def floats_from_binary(raw: memoryview, dtype: np.dtype, shape: list[int], what: str) -> np.ndarray:
    """Raw little-endian numbers → an array of ``shape``."""
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise RequestError(f"{what}: {len(raw)} bytes of binary data, shape {shape} needs {expected}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)
