"""The table, protobuf and bundle parsers on hand-built bytes: cases TensorFlow never writes.

The little encoders here and in ``protobuf_encoding`` follow spec 6.2-6.5 directly, so the readers are
checked against the documented layout as well as against TensorFlow's own files (``test_readers.py``).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from irv2.errors import CheckpointError
from irv2.formats import _protobuf as pb
from irv2.formats import read_checkpoint, read_table, read_v1, read_v2
from irv2.formats.crc32c import crc32c, mask
from protobuf_encoding import field_bytes, field_fixed32, field_varint, varint

MAGIC = 0xDB4775248B80FB57


# --- encoders ---------------------------------------------------------------------------------


def block(entries: list[tuple[bytes, bytes]], raw_entries: bytes = b"") -> bytes:
    """Block contents with delta-coded keys and a single restart point."""
    out = bytearray(raw_entries)
    previous = b""
    for key, value in entries:
        shared = 0
        while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
            shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        previous = key
    return bytes(out) + struct.pack("<II", 0, 1)


def with_trailer(contents: bytes, kind: int = 0) -> bytes:
    return contents + bytes([kind]) + struct.pack("<I", mask(crc32c(contents + bytes([kind]))))


def table(
    entries: list[tuple[bytes, bytes]],
    *,
    kind: int = 0,
    raw_entries: bytes = b"",
    index_handle: tuple[int, int] | None = None,
) -> bytes:
    data = block(entries, raw_entries)
    out = with_trailer(data, kind)
    meta = block([])
    meta_offset = len(out)
    out += with_trailer(meta)
    handle = index_handle or (0, len(data))
    index = block([(b"\xff", varint(handle[0]) + varint(handle[1]))])
    index_offset = len(out)
    out += with_trailer(index)
    handles = varint(meta_offset) + varint(len(meta)) + varint(index_offset) + varint(len(index))
    return out + handles.ljust(40, b"\x00") + struct.pack("<Q", MAGIC)


def shape(*dims: int) -> bytes:
    return b"".join(field_bytes(2, field_varint(1, d)) for d in dims)


def bundle_entry(dtype: int, dims: tuple[int, ...], offset: int, data: bytes, **extra: int) -> bytes:
    out = field_varint(1, dtype) + field_bytes(2, shape(*dims))
    out += field_varint(3, extra.get("shard_id", 0))
    out += field_varint(4, offset) + field_varint(5, extra.get("size", len(data)))
    return out + field_fixed32(6, mask(crc32c(data)))


def write_bundle(
    tmp_path: Path,
    tensors: list[tuple[str, int, tuple[int, ...], bytes]],
    *,
    header: bytes | None = None,
    **extra: int,
) -> str:
    prefix = str(tmp_path / "crafted")
    entries = [(b"", field_varint(1, 1) + field_bytes(3, field_varint(1, 1)) if header is None else header)]
    shard = bytearray()
    for name, dtype, dims, data in sorted(tensors):
        entries.append((name.encode(), bundle_entry(dtype, dims, len(shard), data, **extra)))
        shard += data
    Path(prefix + ".index").write_bytes(table(entries))
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(shard))
    return prefix


def v1_file(tmp_path: Path, meta: list[bytes], records: list[tuple[bytes, bytes]]) -> Path:
    """``meta``: SavedSliceMeta messages; ``records``: (key, SavedSlice message)."""
    head = field_bytes(1, b"".join(field_bytes(1, m) for m in meta))
    entries = [(b"", head)] + [(key, field_bytes(2, saved)) for key, saved in records]
    path = tmp_path / "crafted.ckpt"
    path.write_bytes(table(entries))
    return path


def slice_meta(name: str, dtype: int, *dims: int) -> bytes:
    full_slice = field_bytes(4, b"".join(field_bytes(1, b"") for _ in dims))
    return field_bytes(1, name.encode()) + field_bytes(2, shape(*dims)) + field_varint(3, dtype) + full_slice


def saved_slice(name: str, tensor_proto: bytes, extents: bytes = b"") -> bytes:
    return field_bytes(1, name.encode()) + field_bytes(2, extents) + field_bytes(3, tensor_proto)


# --- protobuf ---------------------------------------------------------------------------------


def test_varints():
    for value in (0, 1, 127, 128, 300, 2**32, 2**63, 2**64 - 1):
        assert pb.read_varint(varint(value), 0) == (value, len(varint(value)))
    with pytest.raises(pb.ProtoError, match="truncated"):
        pb.read_varint(b"\x80\x80", 0)
    with pytest.raises(pb.ProtoError, match="longer than 10"):
        pb.read_varint(b"\xff" * 11 + b"\x01", 0)


def test_parse_and_typed_fields():
    msg = field_varint(1, -5) + field_bytes(2, b"hi") + field_fixed32(3, 7) + field_varint(99, 1)
    msg += varint(4 << 3 | 1) + struct.pack("<d", 2.5)
    fields = pb.parse(msg)
    assert pb.int64(fields, 1) == -5
    assert pb.string(fields, 2) == "hi"
    assert pb.fixed32(fields, 3) == 7
    assert pb.packed_fixed(fields, 4, "<f8").tolist() == [2.5]
    assert pb.uint(fields, 5, default=42) == 42  # absent: proto3 default
    with pytest.raises(pb.ProtoError, match="should be"):
        pb.message(fields, 1)
    with pytest.raises(pb.ProtoError, match="past its message"):
        pb.parse(field_bytes(2, b"hello")[:-1])
    with pytest.raises(pb.ProtoError, match="wire type 3"):
        pb.parse(varint(1 << 3 | 3))
    with pytest.raises(pb.ProtoError, match="not UTF-8"):
        pb.string(pb.parse(field_bytes(1, b"\xff\xfe")), 1)


def test_packed_and_unpacked_repeated_fields_concatenate():
    values = [0, 1, 127, 128, 2**31 - 1, -1, -(2**31), 2**62, -(2**63)]
    packed = field_bytes(7, b"".join(varint(v) for v in values))
    unpacked = b"".join(field_varint(7, v) for v in values)
    fields = pb.parse(packed + unpacked + packed)
    assert pb.packed_varints(fields, 7).view(np.int64).tolist() == values * 3
    floats = np.array([1.5, -0.0, np.inf, 3.0], np.float32)
    mixed = field_bytes(5, floats[:2].tobytes())
    mixed += b"".join(field_fixed32(5, int(b)) for b in floats[2:].view(np.uint32))
    assert np.array_equal(pb.packed_fixed(pb.parse(mixed), 5, "<f4"), floats)
    with pytest.raises(pb.ProtoError, match="inside a varint"):
        pb.packed_varints(pb.parse(field_bytes(7, b"\x01\x80")), 7)
    with pytest.raises(pb.ProtoError, match="whole number"):
        pb.packed_fixed(pb.parse(field_bytes(5, b"\x00" * 5)), 5, "<f4")


# --- table ------------------------------------------------------------------------------------


def test_table_round_trip(tmp_path):
    entries = [(b"", b"head"), (b"abc", b"1"), (b"abd", b"22"), (b"abdx", b""), (b"b", b"x" * 1000)]
    path = tmp_path / "t.table"
    path.write_bytes(table(entries))
    assert [(k, v.tobytes()) for k, v in read_table(path)] == entries


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: table([(b"a", b"1")], kind=1), "Snappy"),
        (lambda: table([(b"a", b"1")], kind=7), "compression type 7"),
        (lambda: table([(b"a", b"1")], index_handle=(10**6, 10)), "past the end"),
        (lambda: table([], raw_entries=b"\x00\x01\x05a1"), "overruns"),
        (lambda: table([], raw_entries=b"\xff" * 12), "bad entry"),
        (lambda: table([(b"b", b"1"), (b"a", b"2")]), "out of order"),
        (lambda: bytes(40) + struct.pack("<Q", MAGIC), "lies past the data|past the end"),
        (lambda: b"\xff" * 40 + struct.pack("<Q", MAGIC), "footer"),
    ],
)
def test_table_damage(tmp_path, build, match):
    path = tmp_path / "bad.table"
    path.write_bytes(build())
    with pytest.raises(CheckpointError, match=match) as info:
        list(read_table(path))
    assert str(path) in str(info.value)


# --- V2 bundle --------------------------------------------------------------------------------


def test_big_endian_bundle(tmp_path):
    values = np.arange(6, dtype=">f4").reshape(2, 3)
    header = field_varint(1, 1) + field_varint(2, 1)
    prefix = write_bundle(tmp_path, [("x", 1, (2, 3), values.tobytes())], header=header)
    got = read_v2(prefix)["x"]
    assert got.dtype == np.float32 and got.dtype.isnative
    assert np.array_equal(got, values)


def test_bundle_from_a_newer_format_is_refused(tmp_path):
    header = field_varint(1, 1) + field_bytes(3, field_varint(1, 2) + field_varint(2, 2))
    prefix = write_bundle(tmp_path, [("x", 1, (1,), b"\x00" * 4)], header=header)
    with pytest.raises(CheckpointError, match="version"):
        read_v2(prefix)


@pytest.mark.parametrize(
    ("tensors", "extra", "match"),
    [
        ([("x", 1, (3,), b"\x00" * 8)], {}, "8 bytes stored for shape"),
        ([("x", 20, (1,), b"\x00" * 4)], {}, "DT_RESOURCE"),
        ([("x", 11, (1,), b"\x00")], {}, "DT_QINT8"),
        ([("x", 77, (1,), b"\x00")], {}, "unknown DataType 77"),
        ([("x", 1, (1,), b"\x00" * 4)], {"shard_id": 3}, "shard 3"),
        ([("x", 1, (2,), b"\x00" * 8)], {"size": 80}, "bytes stored|truncated"),
    ],
)
def test_bad_bundle_entries(tmp_path, tensors, extra, match):
    prefix = write_bundle(tmp_path, tensors, **extra)
    with pytest.raises(CheckpointError, match=match) as info:
        read_checkpoint(prefix)
    assert "crafted" in str(info.value)


def test_corrupt_entry_proto(tmp_path):
    prefix = str(tmp_path / "crafted")
    entries = [(b"", field_varint(1, 1)), (b"x", field_varint(1, 1) + b"\x12\x7f")]
    Path(prefix + ".index").write_bytes(table(entries))
    with pytest.raises(CheckpointError, match="corrupt entry for tensor 'x'") as info:
        read_v2(prefix)
    assert prefix + ".index" in str(info.value)


# --- V1 -----------------------------------------------------------------------------------------


def test_v1_value_encodings(tmp_path):
    floats = np.array([[1.0, -2.0], [3.5, 0.25]], np.float32)
    unpacked = b"".join(field_fixed32(5, int(v)) for v in floats.ravel().view(np.uint32))
    ints = np.array([-7, 0, 2**31 - 1], np.int32)
    int_proto = b"".join(field_varint(7, int(v)) for v in ints)  # unpacked, 10-byte negatives
    doubles = np.array([np.pi, -1e300])
    content = field_bytes(4, doubles.tobytes())  # tensor_content instead of double_val
    halves = np.array([0.5, -1.0], np.float16)
    half_proto = field_bytes(13, b"".join(varint(int(v)) for v in halves.view(np.uint16)))
    path = v1_file(
        tmp_path,
        [
            slice_meta("f", 1, 2, 2),
            slice_meta("i", 3, 3),
            slice_meta("d", 2, 2),
            slice_meta("h", 19, 2),
        ],
        [
            (b"1", saved_slice("f", unpacked)),
            (b"2", saved_slice("i", int_proto)),
            (b"3", saved_slice("d", content)),
            (b"4", saved_slice("h", half_proto)),
        ],
    )
    tensors = read_v1(path)
    assert np.array_equal(tensors["f"], floats)
    assert np.array_equal(tensors["i"], ints) and tensors["i"].dtype == np.int32
    assert np.array_equal(tensors["d"], doubles)
    assert np.array_equal(tensors["h"], halves) and tensors["h"].dtype == np.float16


@pytest.mark.parametrize(
    ("meta", "records", "match"),
    [
        ([slice_meta("a", 1, 2)], [], "has no data"),
        ([slice_meta("a", 1, 2)], [(b"1", saved_slice("b", field_bytes(5, bytes(8))))], "does not list"),
        ([slice_meta("a", 1, 2)], [(b"1", saved_slice("a", field_bytes(5, bytes(12))))], "holds 3 values"),
        (
            [slice_meta("a", 1, 2)],
            [(b"1", saved_slice("a", field_bytes(5, bytes(8)))), (b"2", saved_slice("a", field_bytes(5, bytes(8))))],
            "overlapping",
        ),
        ([slice_meta("a", 3, 1)], [(b"1", saved_slice("a", field_varint(7, 2**40)))], "does not fit int32"),
        ([slice_meta("a", 1, 2)], [(b"1", field_varint(1, 5))], "corrupt record"),
    ],
)
def test_bad_v1_records(tmp_path, meta, records, match):
    path = v1_file(tmp_path, meta, records)
    with pytest.raises(CheckpointError, match=match) as info:
        read_v1(path)
    assert str(path) in str(info.value)


def test_v1_without_metadata_is_refused(tmp_path):
    path = tmp_path / "nometa.ckpt"
    path.write_bytes(table([(b"a", b"")]))
    with pytest.raises(CheckpointError, match="no metadata record"):
        read_checkpoint(path)
    path.write_bytes(table([]))
    with pytest.raises(CheckpointError, match="table is empty"):
        read_checkpoint(path)


def test_partitioned_entry_without_its_slice(tmp_path):
    prefix = str(tmp_path / "crafted")
    extent = field_bytes(1, field_varint(1, 0) + field_varint(2, 1))
    full = field_varint(1, 1) + field_bytes(2, shape(2)) + field_bytes(7, extent)
    Path(prefix + ".index").write_bytes(table([(b"", field_varint(1, 1)), (b"x", full)]))
    Path(prefix + ".data-00000-of-00001").write_bytes(b"")
    with pytest.raises(CheckpointError, match="listed but not stored"):
        read_v2(prefix)


@pytest.mark.parametrize("key", [b"\x00\x05", b"\x00x\x00\x01", b"\x00x\x00\x01\x01\x01\x80\x7f\x00"])
def test_malformed_slice_keys(tmp_path, key):
    prefix = str(tmp_path / "crafted")
    entry = field_varint(1, 1) + field_bytes(2, shape(1)) + field_varint(5, 4)
    Path(prefix + ".index").write_bytes(table([(b"", field_varint(1, 1)), (key, entry)]))
    with pytest.raises(CheckpointError, match="corrupt entry"):
        read_v2(prefix)


def string_tensor(values: list[bytes]) -> tuple[bytes, int]:
    """DT_STRING bytes as BundleWriter lays them out, and the CRC it records for them."""
    lengths = b"".join(varint(len(v)) for v in values)
    crc = crc32c(b"".join(struct.pack("<I", len(v)) for v in values))
    length_check = struct.pack("<I", mask(crc))
    crc = crc32c(length_check + b"".join(values), crc)
    return lengths + length_check + b"".join(values), crc


def test_string_tensor_checksums(tmp_path):
    data, crc = string_tensor([b"ab", b"", b"c" * 200])
    prefix = str(tmp_path / "crafted")
    entry = field_varint(1, 7) + field_bytes(2, shape(3)) + field_varint(5, len(data)) + field_fixed32(6, mask(crc))
    Path(prefix + ".index").write_bytes(table([(b"", field_varint(1, 1)), (b"s", entry)]))
    Path(prefix + ".data-00000-of-00001").write_bytes(data)
    assert read_v2(prefix)["s"].tolist() == [b"ab", b"", b"c" * 200]
    broken = bytearray(data)
    broken[-1] ^= 1
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(broken))
    with pytest.raises(CheckpointError, match="CRC"):
        read_v2(prefix)
    broken = bytearray(data)
    broken[4] ^= 1  # the stored checksum of the lengths, after 4 bytes of varint lengths
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(broken))
    with pytest.raises(CheckpointError, match="length CRC"):
        read_v2(prefix)


def test_v1_slice_outside_the_shape(tmp_path):
    extents = field_bytes(1, field_varint(1, 2) + field_varint(2, 2))
    path = v1_file(tmp_path, [slice_meta("a", 1, 3)], [(b"1", saved_slice("a", field_bytes(5, bytes(8)), extents))])
    with pytest.raises(CheckpointError, match="lies outside"):
        read_v1(path)


def test_v1_unknown_rank_and_bfloat16(tmp_path):
    unknown = field_bytes(1, b"a") + field_bytes(2, field_varint(3, 1)) + field_varint(3, 1)
    with pytest.raises(CheckpointError, match="unknown rank"):
        read_v1(v1_file(tmp_path, [unknown], []))
    bits = [0x3F80, 0xC020]  # bfloat16 1.0 and -2.5, stored in half_val
    path = v1_file(
        tmp_path,
        [slice_meta("b", 14, 2)],
        [(b"1", saved_slice("b", field_bytes(13, b"".join(varint(b) for b in bits))))],
    )
    got = read_v1(path)["b"]
    assert got.dtype == np.float32 and got.tolist() == [1.0, -2.5]
