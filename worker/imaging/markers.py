"""Pure byte-level facts read without a decoder (no pyvips here)."""

from __future__ import annotations

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
