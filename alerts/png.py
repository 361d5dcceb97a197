"""A tiny PNG sparkline of a surge, in pure Python (zlib): no matplotlib in the worker.

Good enough for an email: a filled area chart of the incident's trend, last point highlighted.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

_BACKGROUND = (255, 255, 255)
_FILL = (253, 212, 208)
_LINE = (200, 30, 30)
_AXIS = (200, 200, 200)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def sparkline_png(values: Sequence[float], width: int = 320, height: int = 80) -> bytes:
    """RGB PNG of `values` (at least one point); flat or empty series draw a baseline."""
    width, height = max(16, int(width)), max(16, int(height))
    pixels = [[_BACKGROUND for _ in range(width)] for _ in range(height)]
    points = [float(v) for v in values if v == v] or [0.0]
    if len(points) == 1:
        points = points * 2
    low, high = min(0.0, min(points)), max(points)
    span = (high - low) or 1.0
    pad = 4
    inner_w, inner_h = width - 2 * pad, height - 2 * pad

    def y_of(value: float) -> int:
        return pad + inner_h - 1 - round((value - low) / span * (inner_h - 1))

    for x in range(width):
        pixels[height - pad][x] = _AXIS
    previous_y: int | None = None
    for x in range(inner_w):
        position = x / (inner_w - 1) * (len(points) - 1)
        left = int(position)
        right = min(left + 1, len(points) - 1)
        value = points[left] + (points[right] - points[left]) * (position - left)
        y = y_of(value)
        for fill_y in range(y + 1, height - pad):
            pixels[fill_y][pad + x] = _FILL
        top, bottom = (y, y) if previous_y is None else (min(y, previous_y), max(y, previous_y))
        for line_y in range(top, bottom + 1):
            pixels[line_y][pad + x] = _LINE
            if line_y + 1 < height:
                pixels[line_y + 1][pad + x] = _LINE
        previous_y = y
    last_y = y_of(points[-1])
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            if dx * dx + dy * dy <= 9:
                yy, xx = last_y + dy, pad + inner_w - 1 + dx
                if 0 <= yy < height and 0 <= xx < width:
                    pixels[yy][xx] = _LINE
    raw = b"".join(b"\x00" + bytes(c for pixel in row for c in pixel) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )
