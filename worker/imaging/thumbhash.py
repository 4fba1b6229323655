"""ThumbHash encoder (pure): an RGBA image of at most 100x100 pixels -> a ~25-byte placeholder.

Written from Evan Wallace's specification (https://evanw.github.io/thumbhash/, MIT): the image is turned
into an LPQA colour space (luminance, yellow-blue, red-green, alpha; transparent pixels take the average
colour), each channel is reduced to its lowest 2-D DCT coefficients (up to 7 per axis for L, 3 for P and Q,
5 for A), and those are quantised to 4 bits behind a 5- or 6-byte header holding the DC terms, the scales,
the aspect ratio and whether there is alpha. Any ThumbHash decoder (JavaScript, Swift, Rust, ...) turns
the bytes back into a blurred placeholder.

Why not the ``thumbhash`` PyPI package (0.1.2, MIT): its encoder raises on every image with transparency
(an operator-precedence slip makes the alpha channel a tuple), it prints from its decoder, it rounds
halves to even where the specification rounds them up, and it has had no release since 2023. On opaque
images the two agree except where a coefficient that is zero in exact arithmetic (a symmetric image)
lands on the 7.5 rounding boundary and float noise picks the side: the sums here are separable and
exactly rounded (``math.fsum``), so the result is deterministic and a decoder sees no difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MAX_SIDE = 100


def _round(value: float) -> int:
    """JavaScript's Math.round (halves up), which the specification uses."""
    return math.floor(value + 0.5)


def _encode_channel(
    channel: Sequence[float], w: int, h: int, nx: int, ny: int
) -> tuple[float, list[float], float]:
    """DC, AC coefficients normalised to 0..1, and their scale (the largest magnitude)."""
    # cos(pi/w * cx * (x + 0.5)) per (cx, x) and per (cy, y); the 2-D sum is separable.
    fx = [[math.cos(math.pi / w * cx * (x + 0.5)) for x in range(w)] for cx in range(nx)]
    fy = [[math.cos(math.pi / h * cy * (y + 0.5)) for y in range(h)] for cy in range(ny)]
    rows = [channel[y * w : (y + 1) * w] for y in range(h)]
    # row_sums[cx][y] = sum over x of channel[x, y] * fx[cx][x]
    row_sums = [[math.fsum(map(float.__mul__, row, fx[cx])) for row in rows] for cx in range(nx)]
    dc, ac, scale = 0.0, [], 0.0
    for cy in range(ny):
        cx = 0
        while cx * ny < nx * (ny - cy):
            f = math.fsum(map(float.__mul__, row_sums[cx], fy[cy])) / (w * h)
            if cx or cy:
                ac.append(f)
                scale = max(scale, abs(f))
            else:
                dc = f
            cx += 1
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


def rgba_to_thumbhash(w: int, h: int, rgba: bytes) -> bytes:
    """Encode ``w`` x ``h`` pixels of 8-bit RGBA (not premultiplied, row by row) as a ThumbHash."""
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise ValueError(f"{w}x{h} does not fit in {MAX_SIDE}x{MAX_SIDE}")
    if len(rgba) != w * h * 4:
        raise ValueError(f"{len(rgba)} bytes is not {w}x{h} RGBA")
    n = w * h
    alphas = [rgba[i * 4 + 3] / 255 for i in range(n)]
    avg_a = math.fsum(alphas)
    avg = [0.0, 0.0, 0.0]
    if avg_a:
        for c in range(3):
            avg[c] = math.fsum(alphas[i] / 255 * rgba[i * 4 + c] for i in range(n)) / avg_a
    has_alpha = avg_a < n
    l_limit = 5 if has_alpha else 7
    lx = max(1, _round(l_limit * w / max(w, h)))
    ly = max(1, _round(l_limit * h / max(w, h)))
    lum: list[float] = []
    yb: list[float] = []
    rg: list[float] = []
    for i in range(n):
        alpha = alphas[i]
        r, g, b = (avg[c] * (1 - alpha) + alpha / 255 * rgba[i * 4 + c] for c in range(3))
        lum.append((r + g + b) / 3)
        yb.append((r + g) / 2 - b)
        rg.append(r - g)
    l_dc, l_ac, l_scale = _encode_channel(lum, w, h, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _encode_channel(yb, w, h, 3, 3)
    q_dc, q_ac, q_scale = _encode_channel(rg, w, h, 3, 3)
    landscape = w > h
    header24 = (
        _round(63 * l_dc)
        | (_round(31.5 + 31.5 * p_dc) << 6)
        | (_round(31.5 + 31.5 * q_dc) << 12)
        | (_round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if landscape else lx)
        | (_round(63 * p_scale) << 3)
        | (_round(63 * q_scale) << 9)
        | (int(landscape) << 15)
    )
    out = bytearray([header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8])
    channels = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = _encode_channel(alphas, w, h, 5, 5)
        out.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
        channels.append(a_ac)
    nibbles = [_round(15 * f) for ac in channels for f in ac]
    if len(nibbles) % 2:
        nibbles.append(0)
    out.extend(lo | (hi << 4) for lo, hi in zip(nibbles[::2], nibbles[1::2], strict=True))
    return bytes(out)
