"""Pure byte-level facts read without a decoder (no pyvips here)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# Start-of-frame markers of progressive JPEG processes (huffman, differential, arithmetic variants).
_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_NO_LENGTH = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn carry no length field
_SCAN_LIMIT = 4 * 1024 * 1024  # headers (EXIF, ICC, XMP) come first; don't walk more than this


def jpeg_is_progressive(data: bytes) -> bool:
    """True when the first frame header of a JPEG says progressive (these cannot be decoded in strips).

    Walks the marker segments up to the first SOFn; junk between segments is skipped the way libjpeg does.
    """
    if not data.startswith(b"\xff\xd8"):
        return False
    position, end = 2, min(len(data), _SCAN_LIMIT)
    while position + 4 <= end:
        if data[position] != 0xFF:
            position += 1
            continue
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        if marker in _NO_LENGTH or marker == 0x00:
            position += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return marker in _PROGRESSIVE_SOF
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return False
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        position += 2 + max(length, 2)
    return False


def webp_without_metadata(data: bytes) -> bytes:
    """The WebP file with its EXIF and XMP chunks removed (and the VP8X flags saying so).

    libvips 8.14's webpsave writes a minimal EXIF block (orientation, resolution) even with ``strip``;
    newer versions honour ``keep``. Anything that is not a well-formed extended WebP is returned as is.
    """
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP" or data[12:16] != b"VP8X":
        return data
    chunks: list[bytes] = []
    position = 12
    while position + 8 <= len(data):
        fourcc = data[position : position + 4]
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        end = position + 8 + size + (size & 1)
        if end > len(data):
            return data
        if fourcc not in (b"EXIF", b"XMP "):
            chunks.append(data[position:end])
        position = end
    if position != len(data):
        return data
    header = bytearray(chunks[0])
    header[8] &= ~(0x08 | 0x04) & 0xFF  # VP8X flags: no EXIF, no XMP
    body = b"WEBP" + bytes(header) + b"".join(chunks[1:])
    return b"RIFF" + len(body).to_bytes(4, "little") + body


@dataclass(frozen=True)
class Nclx:
    """An ISOBMFF ``colr`` box of type ``nclx``: ITU-T H.273 code points (1/13/6 is sRGB)."""

    primaries: int
    transfer: int
    matrix: int


def heif_nclx(data: bytes) -> Nclx | None:
    """The nclx colour of a HEIF/AVIF file's primary image (None without one, or with an ICC ``colr``).

    Walks ``meta`` -> ``pitm`` (the primary item), ``iprp/ipco`` (the properties) and ``ipma`` (which
    properties belong to which item); anything malformed gives None (the file is still decoded as is).
    """
    try:
        meta = _child(data, 0, min(len(data), _SCAN_LIMIT), b"meta")
        if meta is None:
            return None
        start, end = meta[0] + 4, meta[1]  # meta is a full box: version and flags first
        pitm = _child(data, start, end, b"pitm")
        iprp = _child(data, start, end, b"iprp")
        if pitm is None or iprp is None:
            return None
        primary = int.from_bytes(data[pitm[0] + 4 : pitm[0] + (6 if data[pitm[0]] == 0 else 8)], "big")
        ipco = _child(data, iprp[0], iprp[1], b"ipco")
        ipma = _child(data, iprp[0], iprp[1], b"ipma")
        if ipco is None or ipma is None:
            return None
        properties = list(_boxes(data, ipco[0], ipco[1]))
        colours = [
            properties[index - 1]
            for index in _associations(data, ipma, primary)
            if 0 < index <= len(properties) and properties[index - 1][0] == b"colr"
        ]
        if not colours or any(data[s : s + 4] in (b"prof", b"rICC") for _, s, _ in colours):
            return None
        for _, s, e in colours:
            if data[s : s + 4] == b"nclx" and e - s >= 10:
                p, t, m = (int.from_bytes(data[s + i : s + i + 2], "big") for i in (4, 6, 8))
                return Nclx(p, t, m)
    except (IndexError, ValueError):
        return None
    return None


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box between ``start`` and ``end``."""
    position = start
    while position + 8 <= end:
        size, kind, header = (
            int.from_bytes(data[position : position + 4], "big"),
            data[position + 4 : position + 8],
            8,
        )
        if size == 1:
            size, header = int.from_bytes(data[position + 8 : position + 16], "big"), 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            return
        yield kind, position + header, position + size
        position += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(((s, e) for k, s, e in _boxes(data, start, end) if k == kind), None)


def _associations(data: bytes, ipma: tuple[int, int], item: int) -> list[int]:
    """The property indexes (1-based) ``ipma`` associates with ``item``."""
    version, flags = data[ipma[0]], data[ipma[0] + 3]
    position = ipma[0] + 4
    count = int.from_bytes(data[position : position + 4], "big")
    position += 4
    for _ in range(count):
        width = 2 if version < 1 else 4
        item_id = int.from_bytes(data[position : position + width], "big")
        position += width
        n = data[position]
        position += 1
        indexes = []
        for _ in range(n):
            if flags & 1:
                indexes.append(int.from_bytes(data[position : position + 2], "big") & 0x7FFF)
                position += 2
            else:
                indexes.append(data[position] & 0x7F)
                position += 1
        if item_id == item:
            return indexes
    return []
