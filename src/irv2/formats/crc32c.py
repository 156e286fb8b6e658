"""CRC-32C (Castagnoli), the checksum TensorFlow puts on every table block and every V2 tensor.

Pure numpy, fast enough for a whole checkpoint: the buffer is cut into a few thousand equal lanes
whose CRC registers advance together, four bytes per numpy step, and the lane registers are then
folded pairwise with the linear "feed n zero bytes" operator.

Why the fold is right: the register update is linear over GF(2) in (register, data), so the register
after ``A + B`` is ``zeros(len(B)) @ reg(A) ^ reg(B)``, where ``reg(B)`` starts from 0 and ``zeros(n)``
is the 32×32 matrix that feeds n zero bytes. The start value only has to enter through the first lane.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["crc32c", "mask", "unmask"]

_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8

# Below this many bytes the lane machinery costs more than a plain loop over the bytes.
_SMALL = 256
# Lanes advance together: more lanes mean fewer numpy steps but a longer fold. A few thousand lanes
# keep the lanes' cache lines (one per lane) inside L2 while the column walk runs.
_TARGET_LANES = 8192


def _byte_table() -> list[int]:
    table = []
    for byte in range(256):
        reg = byte
        for _ in range(8):
            reg = (reg >> 1) ^ (_POLY if reg & 1 else 0)
        table.append(reg)
    return table


_T1 = _byte_table()  # register after byte b is fed into a zero register


def _word_tables() -> tuple[np.ndarray, np.ndarray]:
    """Two 65536-entry tables that advance the register by one little-endian 4-byte word.

    After ``x = reg ^ word`` the new register is ``low[x & 0xFFFF] ^ high[x >> 16]``: the low half of
    ``x`` still travels through four bytes of the register, the high half through two.
    """
    t = np.array(_T1, dtype=np.uint32)
    by_zeros = [t]  # by_zeros[k][b]: byte b followed by k zero bytes
    for _ in range(3):
        prev = by_zeros[-1]
        by_zeros.append(t[prev & 0xFF] ^ (prev >> 8))
    lo_byte = np.arange(65536, dtype=np.uint32) & 0xFF
    hi_byte = np.arange(65536, dtype=np.uint32) >> 8
    low = by_zeros[3][lo_byte] ^ by_zeros[2][hi_byte]
    high = by_zeros[1][lo_byte] ^ by_zeros[0][hi_byte]
    return low, high


_LOW, _HIGH = _word_tables()
_BASIS = np.array([1 << i for i in range(32)], dtype=np.uint32)
_BITS = ((np.arange(256, dtype=np.uint32)[:, None] >> np.arange(8, dtype=np.uint32)) & 1).astype(bool)


def _tables_from_columns(cols: np.ndarray) -> np.ndarray:
    """Four 256-entry tables, shape (4, 256), for the GF(2) matrix whose column i is ``cols[i]``."""
    tables = np.zeros((4, 256), dtype=np.uint32)
    for k in range(4):
        chosen = np.where(_BITS, cols[8 * k : 8 * k + 8][None, :], np.uint32(0))
        tables[k] = np.bitwise_xor.reduce(chosen, axis=1)
    return tables


def _apply_tables(tables: np.ndarray, regs: np.ndarray) -> np.ndarray:
    return (
        tables[0][regs & 0xFF] ^ tables[1][(regs >> 8) & 0xFF] ^ tables[2][(regs >> 16) & 0xFF] ^ tables[3][regs >> 24]
    )


@functools.cache
def _zeros_operator(log2_n: int) -> np.ndarray:
    """The linear map "feed 2**log2_n zero bytes" as four lookup tables, one per register byte.

    Lanes are a power of two long, so only powers of two are needed: each is the square of the
    previous one, and there are never more than a few dozen.
    """
    if log2_n == 0:
        cols = np.array([_T1[(1 << i) & 0xFF] ^ ((1 << i) >> 8) for i in range(32)], dtype=np.uint32)
    else:
        half = _zeros_operator(log2_n - 1)
        cols = _apply_tables(half, _apply_tables(half, _BASIS))
    return _tables_from_columns(cols)


def _update_bytes(reg: int, data: memoryview) -> int:
    table = _T1
    for byte in data.tobytes():
        reg = table[(reg ^ byte) & 0xFF] ^ (reg >> 8)
    return reg


def _update_lanes(reg: int, words: np.ndarray, log2_lane_bytes: int) -> int:
    """Register after feeding ``words``, a (lanes, lane_words) uint32 array, row after row, from ``reg``."""
    lanes, lane_words = words.shape
    regs = np.zeros(lanes, dtype=np.uint32)
    regs[0] = reg
    x = np.empty_like(regs)
    idx = np.empty_like(regs)
    tmp = np.empty_like(regs)
    for j in range(lane_words):
        np.bitwise_xor(regs, words[:, j], out=x)
        np.bitwise_and(x, 0xFFFF, out=idx)
        np.take(_LOW, idx, out=regs)
        np.right_shift(x, 16, out=idx)
        np.take(_HIGH, idx, out=tmp)
        np.bitwise_xor(regs, tmp, out=regs)
    # [a, b] -> zeros(len(b)) @ a ^ b, halving the count each round. A zero lane in front of a
    # register that starts at 0 changes nothing, so an odd count is padded in front.
    log2_span = log2_lane_bytes
    while regs.size > 1:
        if regs.size % 2:
            regs = np.concatenate([np.zeros(1, dtype=np.uint32), regs])
        regs = _apply_tables(_zeros_operator(log2_span), regs[0::2]) ^ regs[1::2]
        log2_span += 1
    return int(regs[0])


def _update(reg: int, data: memoryview) -> int:
    while len(data) >= _SMALL:
        n_words = len(data) // 4
        log2_lane_words = max(0, (n_words // _TARGET_LANES).bit_length() - 1)
        lane_words = 1 << log2_lane_words
        lanes = n_words // lane_words
        body = lanes * lane_words * 4
        # "<u4" works on any host: numpy swaps bytes itself where the host is big-endian.
        words = np.frombuffer(data[:body], dtype="<u4").reshape(lanes, lane_words)
        reg = _update_lanes(reg, words, log2_lane_words + 2)
        data = data[body:]
    return _update_bytes(reg, data)


def crc32c(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC-32C of ``data``; pass an earlier result as ``value`` to continue it over more bytes.

    ``crc32c(b"123456789") == 0xE3069283`` and ``crc32c(b"") == 0``, as TF's ``crc32c::Value``;
    ``crc32c(b, crc32c(a)) == crc32c(a + b)``, as ``crc32c::Extend``.
    """
    view = memoryview(data).cast("B")
    return _update((value ^ 0xFFFFFFFF) & 0xFFFFFFFF, view) ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    """TensorFlow's stored form of a CRC (``crc32c::Mask``): rotate right by 15, add a constant."""
    crc &= 0xFFFFFFFF
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    """Inverse of :func:`mask`."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
