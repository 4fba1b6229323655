"""The dominant colour of a small RGBA image (pure): the most populated colour cell, averaged.

Pixels are binned by the top 3 bits of each channel (512 cells, coarse enough that a photo's noise and
gradients fall into a few cells); the cell holding the most opaque pixels wins (ties: the lowest cell,
so the answer is deterministic) and its pixels' mean is the colour, as ``#rrggbb``. Pixels less than half
opaque do not vote. This is the colour a front-end can paint behind a placeholder; it is not the average
(a red flower on green leaves is green, not brown).
"""

from __future__ import annotations

from collections import Counter

BITS = 3
_SHIFT = 8 - BITS


def dominant_colour(rgba: bytes) -> str | None:
    """``#rrggbb`` of the most populated colour cell, or None when no pixel is at least half opaque."""
    if len(rgba) % 4:
        raise ValueError(f"{len(rgba)} bytes is not RGBA")
    cells: Counter[int] = Counter()
    sums: dict[int, list[int]] = {}
    for i in range(0, len(rgba), 4):
        r, g, b, a = rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]
        if a < 128:
            continue
        cell = (r >> _SHIFT) << (2 * BITS) | (g >> _SHIFT) << BITS | (b >> _SHIFT)
        cells[cell] += 1
        total = sums.setdefault(cell, [0, 0, 0])
        total[0] += r
        total[1] += g
        total[2] += b
    if not cells:
        return None
    best = max(cells, key=lambda cell: (cells[cell], -cell))
    count = cells[best]
    r, g, b = ((value + count // 2) // count for value in sums[best])
    return f"#{r:02x}{g:02x}{b:02x}"
