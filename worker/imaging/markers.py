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
