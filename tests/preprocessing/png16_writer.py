"""A minimal 16-bit PNG writer for tests: Pillow cannot write 16-bit colour PNGs.

It uses every PNG row filter (none, sub, up, average, Paeth) and optionally Adam7 interlacing, so a
reader's unfiltering of 2- to 8-byte pixels is exercised, not just the trivial filter 0.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def _filtered_rows(samples: np.ndarray) -> bytes:
    height = samples.shape[0]
    channels = samples.shape[2]
    bpp = 2 * channels
    rows = samples.astype(">u2").reshape(height, -1).view(np.uint8).astype(np.int32)
    previous = np.zeros(rows.shape[1], np.int32)
    out = []
    for y, row in enumerate(rows):
        kind = y % 5
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        up_left = np.concatenate([np.zeros(bpp, np.int32), previous[:-bpp]])
        if kind == 0:
            prediction = np.zeros_like(row)
        elif kind == 1:
            prediction = left
        elif kind == 2:
            prediction = previous
        elif kind == 3:
            prediction = (left + previous) // 2
        else:
            estimate = left + previous - up_left
            pa, pb, pc = (
                np.abs(estimate - left),
                np.abs(estimate - previous),
                np.abs(estimate - up_left),
            )
            prediction = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, previous, up_left))
        out.append(bytes([kind]) + ((row - prediction) % 256).astype(np.uint8).tobytes())
        previous = row
    return b"".join(out)


def png16(samples: np.ndarray, interlace: bool = False) -> bytes:
    """Encode uint16 ``[H, W, C]`` (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as a 16-bit PNG."""
    height, width, channels = samples.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    if interlace:
        passes = [samples[y0::dy, x0::dx] for x0, y0, dx, dy in _ADAM7]
        raw = b"".join(_filtered_rows(p) for p in passes if p.size)
    else:
        raw = _filtered_rows(samples)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, int(interlace))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
