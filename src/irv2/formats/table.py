"""TensorFlow's "table" file: a LevelDB SSTable without filter blocks (spec 6.2).

Both checkpoint formats are built on it: a V1 checkpoint is one table, a V2 bundle's ``.index`` is one.
Layout: ``[data block]* [metaindex block] [index block] [footer: 48 bytes ending in a magic number]``.
Every block is followed by a type byte (0 = raw, 1 = Snappy) and the masked CRC-32C of contents + type.
Blocks are read one at a time by file offset, and every block's CRC is checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import CheckpointError
from ._protobuf import ProtoError, read_varint
from .crc32c import crc32c, unmask

FOOTER_SIZE = 48  # two BlockHandles of at most 20 bytes each, zero padding, then 8 bytes of magic
MAGIC = 0xDB4775248B80FB57
_TRAILER_SIZE = 5  # type byte + fixed32 masked CRC
_NO_COMPRESSION, _SNAPPY = 0, 1

__all__ = ["FOOTER_SIZE", "MAGIC", "has_table_footer", "read_table"]


def has_table_footer(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a file that ends with the table magic number (a V1 checkpoint or an index)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < FOOTER_SIZE:
                return False
            f.seek(size - 8)
            return int.from_bytes(f.read(8), "little") == MAGIC
    except OSError:
        return False


def read_table(path: str | os.PathLike[str]) -> Iterator[tuple[bytes, memoryview]]:
    """Yields every ``(key, value)`` of the table at ``path`` in key order.

    Values are views into the block they live in (valid while referenced). Raises ``CheckpointError``
    naming ``path`` if the file is not a table, is truncated, or any block fails its CRC.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 - the generator owns the handle until it finishes
    except OSError as exc:
        raise CheckpointError(path, f"cannot open: {exc.strerror or exc}") from exc
    with f:
        size = f.seek(0, os.SEEK_END)
        index_offset, index_size = _read_footer(f, path, size)
        index = _read_block(f, path, size, index_offset, index_size, "index block")
        previous: bytes | None = None
        for _, handle in _block_entries(path, index, "index block"):
            offset, block_size = _decode_handle(path, handle, "index entry")
            block = _read_block(f, path, size, offset, block_size, f"data block at offset {offset}")
            for key, value in _block_entries(path, block, f"data block at offset {offset}"):
                if previous is not None and key <= previous:
                    raise CheckpointError(path, f"corrupt table: keys out of order at {key!r}")
                previous = key
                yield key, value


def _read_footer(f: BinaryIO, path: str | os.PathLike[str], size: int) -> tuple[int, int]:
    if size == 0:
        raise CheckpointError(path, "empty file")
    if size < FOOTER_SIZE:
        raise CheckpointError(path, f"only {size} bytes, shorter than a TensorFlow table footer ({FOOTER_SIZE} bytes)")
    f.seek(size - FOOTER_SIZE)
    footer = f.read(FOOTER_SIZE)
    if int.from_bytes(footer[40:], "little") != MAGIC:
        raise CheckpointError(path, "no TensorFlow table magic at the end of the file (truncated, or not a checkpoint)")
    view = memoryview(footer)
    try:
        # The metaindex handle comes first; TF's metaindex is empty (no filter blocks), so skip it.
        _, pos = read_varint(view, 0)
        _, pos = read_varint(view, pos)
        index_offset, pos = read_varint(view, pos)
        index_size, pos = read_varint(view, pos)
    except ProtoError as exc:
        raise CheckpointError(path, f"corrupt table footer: {exc}") from exc
    if pos > 40:
        raise CheckpointError(path, "corrupt table footer: block handles overflow their 40 bytes")
    if index_offset + index_size + _TRAILER_SIZE > size - FOOTER_SIZE:
        raise CheckpointError(
            path, f"corrupt table footer: index block [{index_offset}, +{index_size}) lies past the data"
        )
    return index_offset, index_size


def _decode_handle(path: str | os.PathLike[str], value: memoryview, what: str) -> tuple[int, int]:
    try:
        offset, pos = read_varint(value, 0)
        size, pos = read_varint(value, pos)
    except ProtoError as exc:
        raise CheckpointError(path, f"corrupt table: bad block handle in {what}: {exc}") from exc
    return offset, size


def _read_block(
    f: BinaryIO, path: str | os.PathLike[str], file_size: int, offset: int, size: int, what: str
) -> memoryview:
    end = offset + size + _TRAILER_SIZE
    if end > file_size - FOOTER_SIZE:
        raise CheckpointError(path, f"corrupt or truncated table: {what} ends at byte {end}, past the end of the data")
    f.seek(offset)
    buf = bytearray(size + _TRAILER_SIZE)
    if f.readinto(buf) != len(buf):
        raise CheckpointError(path, f"truncated table: could not read the {what}")
    view = memoryview(buf)
    kind = buf[size]
    stored = int.from_bytes(buf[size + 1 :], "little")
    if unmask(stored) != crc32c(view[size : size + 1], crc32c(view[:size])):
        raise CheckpointError(path, f"corrupt table: the {what} fails its CRC-32C check")
    if kind == _SNAPPY:
        raise CheckpointError(
            path,
            f"the {what} is Snappy-compressed; TensorFlow's checkpoint writers never compress, "
            "and irv2 does not decompress Snappy",
        )
    if kind != _NO_COMPRESSION:
        raise CheckpointError(path, f"corrupt table: unknown compression type {kind} in the {what}")
    return view[:size]


def _block_entries(path: str | os.PathLike[str], block: memoryview, what: str) -> Iterator[tuple[bytes, memoryview]]:
    """Scans a block's entries from the start; keys are delta-coded against the previous key."""
    if len(block) < 4:
        raise CheckpointError(path, f"corrupt table: the {what} is too short to hold its trailer")
    num_restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 * (num_restarts + 1)
    if limit < 0:
        raise CheckpointError(path, f"corrupt table: bad restart count in the {what}")
    key = b""
    pos = 0
    while pos < limit:
        try:
            shared, pos = read_varint(block, pos)
            non_shared, pos = read_varint(block, pos)
            value_len, pos = read_varint(block, pos)
        except ProtoError as exc:
            raise CheckpointError(path, f"corrupt table: bad entry in the {what}: {exc}") from exc
        if shared > len(key) or pos + non_shared + value_len > limit:
            raise CheckpointError(path, f"corrupt table: an entry overruns the {what}")
        key = key[:shared] + block[pos : pos + non_shared].tobytes()
        pos += non_shared
        yield key, block[pos : pos + value_len]
        pos += value_len
