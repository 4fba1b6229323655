"""Test inputs made with Pillow (an independent implementation), and readers for the outputs."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
# Pillow's transpose that turns a stored image with this EXIF orientation upright, and its inverse.
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
INVERSE = {**UPRIGHT, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def quadrants(width: int = 120, height: int = 80) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right."""
    image = Image.new("RGB", (width, height), WHITE)
    image.paste(RED, (0, 0, width // 2, height // 2))
    image.paste(GREEN, (width // 2, 0, width, height // 2))
    image.paste(BLUE, (0, height // 2, width // 2, height))
    return image


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def oriented_jpeg(orientation: int, *, width: int = 120, height: int = 80) -> bytes:
    """A JPEG that shows :func:`quadrants` upright only when its EXIF orientation is applied; with GPS."""
    upright = quadrants(width, height)
    stored = upright.transpose(INVERSE[orientation]) if orientation in INVERSE else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x8298] = "(c) Example Photographer"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 24.0)
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes(), subsampling=0)


def lying_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but whose data is a few bytes (a 'bomb' header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def open_output(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    """The pixel at ``xy`` of a multi-band image (what ``getpixel`` returns for one, typed)."""
    value = image.getpixel(xy)
    assert isinstance(value, tuple), f"{image.mode} has one band: {value}"
    return value


def near(actual: float | tuple[int, ...] | None, expected: tuple[int, ...], tolerance: int = 40) -> bool:
    """``actual`` (a ``getpixel`` result) within ``tolerance`` of ``expected`` in every band."""
    assert isinstance(actual, tuple), f"not a multi-band pixel: {actual}"
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))
