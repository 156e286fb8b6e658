"""V2 checkpoints (TensorBundle, spec 6.4): ``<prefix>.index`` plus ``<prefix>.data-NNNNN-of-NNNNN``.

The index is a table (``table.py``) whose ``""`` key holds a BundleHeaderProto and whose other keys are
tensor names mapping to BundleEntryProtos (dtype, shape, shard, offset, size, masked CRC-32C). The data
shards hold the raw row-major bytes. TF-Hub modules keep theirs at ``<module>/variables/variables``.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import re
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from ..errors import CheckpointError
from . import _protobuf as pb
from ._tensors import (
    DT_STRING,
    Extent,
    SliceAssembler,
    base_dtype,
    extents_of,
    native_dtype,
    shape_of,
    to_native,
    wire_dtype,
)
from .crc32c import crc32c, mask, unmask
from .table import read_table

__all__ = ["is_data_shard", "read_v2", "resolve_v2_prefix", "shard_path"]

_READER_VERSION = 1  # kTensorBundleVersion: the bundle format version this reader implements
_SHARD_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")


@dataclass
class _Entry:
    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int = 0
    offset: int = 0
    size: int = 0
    crc: int = 0
    slices: list[list[Extent]] = field(default_factory=list)


def shard_path(prefix: str, shard_id: int, num_shards: int) -> str:
    """The data file of one shard, as TF names it: ``<prefix>.data-00000-of-00001``."""
    return f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}"


def is_data_shard(path: str | os.PathLike[str]) -> bool:
    """True if the file name ends like a V2 data shard (``.data-00000-of-00001``)."""
    return bool(_SHARD_SUFFIX.search(os.fspath(path)))


def resolve_v2_prefix(path: str | os.PathLike[str]) -> str:
    """The bundle prefix meant by ``path``: a prefix, its ``.index`` or a data shard, or a folder.

    A folder must hold exactly one ``*.index`` or be a SavedModel (``variables/variables.index``).
    """
    p = os.fspath(path)
    if p.endswith(".index") and os.path.isfile(p):
        return p[: -len(".index")]
    if os.path.isfile(p + ".index"):
        return p
    if _SHARD_SUFFIX.search(p) and os.path.isfile(p):
        prefix = _SHARD_SUFFIX.sub("", p)
        if os.path.isfile(prefix + ".index"):
            return prefix
        raise CheckpointError(p, f"a V2 data shard without its index ({os.path.basename(prefix)}.index)")
    if os.path.isdir(p):
        indexes = sorted(glob.glob(os.path.join(glob.escape(p), "*.index")))
        if len(indexes) == 1:
            return indexes[0][: -len(".index")]
        if len(indexes) > 1:
            names = ", ".join(os.path.basename(i) for i in indexes)
            raise CheckpointError(p, f"several V2 checkpoints in this folder ({names}); pass one prefix")
        saved_model = os.path.join(p, "variables", "variables")
        if os.path.isfile(saved_model + ".index"):
            return saved_model
        raise CheckpointError(p, "no V2 checkpoint in this folder (no *.index file)")
    raise CheckpointError(p, "no V2 checkpoint here: neither this file nor <path>.index exists")


def read_v2(prefix: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Reads every tensor of a V2 checkpoint, checking each one's size and CRC-32C.

    ``prefix`` may be the prefix (``.../variables``), the ``.index`` file or a folder holding one
    bundle. Returns ``{name: array}`` in native byte order, with the stored shape; bfloat16 is widened
    to float32 and DT_STRING tensors come back as object arrays of ``bytes``. Partitioned tensors are
    assembled from their slices. Raises ``CheckpointError`` naming the file at fault.
    """
    prefix = resolve_v2_prefix(prefix)
    index_path = prefix + ".index"
    num_shards, big_endian, entries, slice_entries = _read_index(index_path)
    jobs = [e for e in entries if not e.slices] + list(slice_entries.values())
    jobs.sort(key=lambda e: (e.shard_id, e.offset))
    data: dict[str, np.ndarray] = {}
    with contextlib.ExitStack() as stack:
        files: dict[int, tuple[str, BinaryIO, int]] = {}
        for entry in jobs:
            if entry.shard_id not in files:
                path = shard_path(prefix, entry.shard_id, num_shards)
                try:
                    f = stack.enter_context(open(path, "rb"))
                except FileNotFoundError as exc:
                    raise CheckpointError(
                        path, f"data shard missing (listed in {os.path.basename(index_path)})"
                    ) from exc
                except OSError as exc:
                    raise CheckpointError(path, f"cannot open: {exc.strerror or exc}") from exc
                files[entry.shard_id] = (path, f, f.seek(0, os.SEEK_END))
            data[entry.name] = _read_tensor(entry, big_endian, *files[entry.shard_id])

    tensors: dict[str, np.ndarray] = {}
    for entry in entries:
        if not entry.slices:
            tensors[entry.name] = data[entry.name]
            continue
        assembler = SliceAssembler(index_path, entry.name, entry.shape, native_dtype(entry.dtype))
        for extents in entry.slices:
            key = _slice_key(entry.name, extents, entry.shape)
            if key not in slice_entries:
                raise CheckpointError(index_path, f"tensor {entry.name!r}: slice {extents} is listed but not stored")
            assembler.add(extents, data[slice_entries[key].name].reshape(-1))
        tensors[entry.name] = assembler.result()
    return tensors


def _read_index(
    index_path: str,
) -> tuple[int, bool, list[_Entry], dict[tuple, _Entry]]:
    rows = read_table(index_path)
    first = next(rows, None)
    if first is None or first[0] != b"":
        raise CheckpointError(index_path, "no bundle header (the empty key): not a V2 checkpoint index")
    try:
        header = pb.parse(first[1])
        num_shards = pb.int64(header, 1)
        endianness = pb.uint(header, 2)
        version = pb.message(header, 3)
        min_consumer = pb.int64(version, 2)
        bad = pb.packed_varints(version, 3).view(np.int64)
    except pb.ProtoError as exc:
        raise CheckpointError(index_path, f"not a V2 checkpoint index: bad bundle header ({exc})") from exc
    if endianness not in (0, 1):
        raise CheckpointError(index_path, f"corrupt bundle header: endianness {endianness}")
    if min_consumer > _READER_VERSION or _READER_VERSION in bad:
        raise CheckpointError(
            index_path,
            f"bundle format needs a reader of version >= {min_consumer} (irv2 reads version 1)",
        )
    entries: list[_Entry] = []
    slice_entries: dict[tuple, _Entry] = {}
    for key, value in rows:
        slice_key = None
        try:
            if key.startswith(b"\x00"):  # one slice of a partitioned tensor
                slice_key = _decode_slice_key(key)
                name = f"{slice_key[0]} (slice {list(slice_key[1])})"
            else:
                name = _decode_name(index_path, key)
            entry = _parse_entry(index_path, name, pb.parse(value))
        except pb.ProtoError as exc:
            shown = key.decode("utf-8", "backslashreplace")
            raise CheckpointError(index_path, f"corrupt entry for tensor {shown!r}: {exc}") from exc
        if slice_key is None:
            entries.append(entry)
        else:
            slice_entries[slice_key] = entry
        if not entry.slices and not 0 <= entry.shard_id < max(num_shards, 1):
            raise CheckpointError(index_path, f"tensor {name} is in shard {entry.shard_id} of only {num_shards}")
    return num_shards, endianness == 1, entries, slice_entries


def _decode_name(index_path: str, key: bytes) -> str:
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(index_path, f"corrupt index: tensor name {key!r} is not UTF-8") from exc


def _parse_entry(index_path: str, name: str, fields: pb.Fields) -> _Entry:
    return _Entry(
        name=name,
        dtype=base_dtype(index_path, name, pb.uint(fields, 1)),
        shape=shape_of(pb.message(fields, 2)),
        shard_id=pb.int64(fields, 3),
        offset=pb.int64(fields, 4),
        size=pb.int64(fields, 5),
        crc=pb.fixed32(fields, 6),
        slices=[extents_of(s) for s in pb.messages(fields, 7)],
    )


def _read_tensor(entry: _Entry, big_endian: bool, path: str, f: BinaryIO, file_size: int) -> np.ndarray:
    numel = math.prod(entry.shape)
    if entry.dtype != DT_STRING and entry.size != numel * wire_dtype(entry.dtype).itemsize:
        raise CheckpointError(
            path,
            f"tensor {entry.name}: {entry.size} bytes stored for shape {list(entry.shape)} "
            f"of {np.dtype(native_dtype(entry.dtype)).name}",
        )
    if entry.offset < 0 or entry.size < 0 or entry.offset + entry.size > file_size:
        raise CheckpointError(
            path,
            f"truncated data shard: tensor {entry.name} needs bytes "
            f"[{entry.offset}, {entry.offset + entry.size}) but the file has {file_size}",
        )
    f.seek(entry.offset)
    buf = bytearray(entry.size)
    if f.readinto(buf) != entry.size:
        raise CheckpointError(path, f"truncated data shard: could not read tensor {entry.name}")
    if entry.dtype == DT_STRING:
        return _decode_strings(entry, path, buf, numel)
    if unmask(entry.crc) != crc32c(buf):
        raise CheckpointError(path, f"tensor {entry.name} fails its CRC-32C check (corrupt data)")
    values = np.frombuffer(buf, dtype=wire_dtype(entry.dtype, big_endian))
    return to_native(values, entry.dtype).reshape(entry.shape)


def _decode_strings(entry: _Entry, path: str, buf: bytearray, numel: int) -> np.ndarray:
    """A DT_STRING tensor: varint64 lengths, masked CRC of the lengths, then the bytes.

    TF's CRC covers each length as a fixed uint32 (uint64 above 4 GiB), not as the varint on disk.
    """
    view = memoryview(buf)
    pos = 0
    lengths = []
    crc = 0
    try:
        for _ in range(numel):
            length, pos = pb.read_varint(view, pos)
            lengths.append(length)
            crc = crc32c(length.to_bytes(4 if length <= 0xFFFFFFFF else 8, "little"), crc)
    except pb.ProtoError as exc:
        raise CheckpointError(path, f"string tensor {entry.name}: {exc}") from exc
    if pos + 4 + sum(lengths) != len(buf):
        raise CheckpointError(path, f"string tensor {entry.name}: lengths do not match its size")
    if int.from_bytes(view[pos : pos + 4], "little") != mask(crc):
        raise CheckpointError(path, f"string tensor {entry.name} fails its length CRC-32C check")
    crc = crc32c(view[pos:], crc)
    if unmask(entry.crc) != crc:
        raise CheckpointError(path, f"tensor {entry.name} fails its CRC-32C check (corrupt data)")
    pos += 4
    out = np.empty(numel, dtype=object)
    for i, length in enumerate(lengths):
        out[i] = bytes(view[pos : pos + length])
        pos += length
    return out.reshape(entry.shape)


# Partitioned tensors. Each slice is stored under EncodeTensorNameSlice(name, slice), an OrderedCode
# string: NumIncreasing(0), String(name), NumIncreasing(rank), then SignedNumIncreasing(start) and
# SignedNumIncreasing(length) per dimension, length -1 meaning "the whole dimension".


def _slice_key(name: str, extents: list[Extent], shape: tuple[int, ...]) -> tuple:
    """The lookup key of a slice listed in its tensor's entry, in the form ``_decode_slice_key`` gives."""
    if not extents:
        extents = [(0, None)] * len(shape)
    return name, tuple((start, -1 if length is None else length) for start, length in extents)


def _decode_slice_key(key: bytes) -> tuple:
    """``(name, ((start, length), ...))`` from a slice key; a length of -1 is a whole dimension."""
    pos = 0
    tag, pos = _read_num_increasing(key, pos)
    if tag != 0:
        raise pb.ProtoError("slice key does not start with 0")
    name, pos = _read_ordered_string(key, pos)
    rank, pos = _read_num_increasing(key, pos)
    extents = []
    for _ in range(rank):
        start, pos = _read_signed_num_increasing(key, pos)
        length, pos = _read_signed_num_increasing(key, pos)
        extents.append((start, length))
    if pos != len(key):
        raise pb.ProtoError("trailing bytes in slice key")
    return name, tuple(extents)


def _read_num_increasing(key: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(key) or pos + 1 + key[pos] > len(key):
        raise pb.ProtoError("truncated number in slice key")
    n = key[pos]
    return int.from_bytes(key[pos + 1 : pos + 1 + n], "big"), pos + 1 + n


def _read_ordered_string(key: bytes, pos: int) -> tuple[str, int]:
    out = bytearray()
    while pos + 1 < len(key):
        byte, nxt = key[pos], key[pos + 1]
        if byte == 0x00 and nxt == 0x01:
            try:
                return out.decode("utf-8"), pos + 2
            except UnicodeDecodeError as exc:
                raise pb.ProtoError("tensor name in slice key is not UTF-8") from exc
        if byte == 0x00 and nxt == 0xFF:
            out.append(0x00)
            pos += 2
        elif byte == 0xFF and nxt == 0x00:
            out.append(0xFF)
            pos += 2
        else:
            out.append(byte)
            pos += 1
    raise pb.ProtoError("unterminated name in slice key")


def _read_signed_num_increasing(key: bytes, pos: int) -> tuple[int, int]:
    """The header is as many 1 bits as the encoding has bytes, then a 0, then two's complement bits.

    Negative numbers are the bitwise complement of that, so their first bit is 0.
    """
    if pos >= len(key):
        raise pb.ProtoError("truncated signed number in slice key")
    negative = key[pos] < 0x80
    flip = 0xFF if negative else 0x00
    first_two = ((key[pos] ^ flip) << 8) | ((key[pos + 1] ^ flip) if pos + 1 < len(key) else 0)
    length = 0
    while length < 16 and first_two & (0x8000 >> length):
        length += 1
    if not 1 <= length <= 10 or pos + length > len(key):
        raise pb.ProtoError("bad signed number in slice key")
    value = int.from_bytes(bytes(b ^ flip for b in key[pos : pos + length]), "big")
    value &= (1 << (8 * length - length - 1)) - 1
    return (~value if negative else value), pos + length
