"""CRC-32C against published check values and a plain bit-by-bit reference."""

from __future__ import annotations

import time

import numpy as np
import pytest

from irv2.formats.crc32c import crc32c, mask, unmask


def reference_crc32c(data: bytes) -> int:
    """The textbook definition: reflected polynomial 0x82F63B78, one bit at a time."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0),
        (b"123456789", 0xE3069283),  # the CRC catalogue's check value
        (bytes(32), 0x8A9136AA),  # RFC 3720 (iSCSI) B.4 test vectors
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_known_vectors(data, expected):
    assert crc32c(data) == expected


@pytest.mark.parametrize(
    "length",
    [1, 3, 7, 255, 256, 257, 1023, 4097, 8191 * 4 + 3, 8192 * 4, 8192 * 4 + 1, 100_003, 333_333],
)
def test_matches_reference_on_random_data(length):
    data = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8).tobytes()
    assert crc32c(data) == reference_crc32c(data)


def test_extend_continues_a_crc():
    data = np.random.default_rng(1).integers(0, 256, 70_001, dtype=np.uint8).tobytes()
    for cut in (0, 1, 4, 999, 65_536, 70_001):
        assert crc32c(data[cut:], crc32c(data[:cut])) == crc32c(data)


def test_accepts_buffers_of_any_kind():
    data = np.arange(1000, dtype=np.float32)
    expected = crc32c(data.tobytes())
    assert crc32c(memoryview(data)) == expected
    assert crc32c(bytearray(data.tobytes())) == expected
    assert crc32c(memoryview(data.tobytes())[10:]) == crc32c(data.tobytes()[10:])


def test_mask_round_trip_and_known_value():
    for crc in (0, 1, 0xE3069283, 0xFFFFFFFF, 0x12345678):
        assert unmask(mask(crc)) == crc
        assert mask(crc) != crc
    # Mask = rotate right by 15, plus 0xa282ead8.
    assert mask(0) == 0xA282EAD8
    assert mask(1) == (0x00020000 + 0xA282EAD8) & 0xFFFFFFFF


def test_fast_enough_for_a_full_checkpoint():
    data = np.random.default_rng(0).integers(0, 256, 64 << 20, dtype=np.uint8).tobytes()
    start = time.perf_counter()
    crc32c(data)
    seconds = time.perf_counter() - start
    # 237 MB of weights must not take minutes: require well over 20 MB/s even on a slow CI machine.
    assert seconds < 3.0, f"{len(data) / seconds / 1e6:.0f} MB/s"
