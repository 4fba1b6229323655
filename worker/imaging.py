"""The processing core (pure, synchronous): image bytes + presets -> renditions.

This is the only module that imports pyvips. It does no I/O of its own: the pipeline runs :func:`render`
in a thread pool and does the S3 reads and writes around it.

What it guarantees for every rendition: upright (EXIF orientation applied, tag gone), sRGB, metadata
stripped, fits inside the preset's box, never upscaled, never 0 px. What it refuses, with a typed error,
before decoding pixels: formats outside the allow-list and images over the pixel limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyvips

from worker.errors import CorruptImage, ImageTooLarge, UnsupportedFormat
from worker.presets import Preset

# libvips loader names admitted by default; everything else (svg, pdf, magick, ...) is refused unread.
DEFAULT_LOADERS = frozenset(
    {"jpegload_buffer", "pngload_buffer", "webpload_buffer", "gifload_buffer", "tiffload_buffer"}
    | {"heifload_buffer"}
)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 50_000_000  # width x height x frames, as imgproxy's default
    loaders: frozenset[str] = DEFAULT_LOADERS


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Rendition:
    preset: Preset
    data: bytes
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return self.preset.content_type


@dataclass(frozen=True)
class Header:
    loader: str
    width: int
    height: int
    frames: int


def probe(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Header:
    """Read the header only and enforce the allow-list and size limits."""
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"{len(data)} bytes is over the {limits.max_bytes}-byte limit")
    if not data:
        raise CorruptImage("empty object")
    loader = _find_loader(data)
    if loader not in limits.loaders:
        raise UnsupportedFormat(f"format {loader.removesuffix('_buffer')} is not allowed")
    try:
        image = pyvips.Image.new_from_buffer(data, "", access="sequential")
        frames = int(image.get("n-pages")) if image.get_typeof("n-pages") else 1
        header = Header(loader=loader, width=image.width, height=image.height, frames=1)
    except pyvips.Error as exc:
        raise CorruptImage(f"unreadable header: {_first_line(exc)}") from exc
    pixels = header.width * header.height
    if pixels > limits.max_pixels:
        raise ImageTooLarge(
            f"{header.width}x{header.height} ({pixels / 1e6:.1f} MP) is over {limits.max_pixels / 1e6:.0f} MP"
        )
    return Header(loader=loader, width=header.width, height=header.height, frames=max(frames, 1))


def render(data: bytes, presets: Sequence[Preset], limits: Limits = DEFAULT_LIMITS) -> list[Rendition]:
    """Render every preset from one decode: shrink-on-load to the largest box, then cascade down."""
    if not presets:
        return []
    probe(data, limits)
    largest = max(presets, key=lambda p: p.width * p.height)
    try:
        base = pyvips.Image.thumbnail_buffer(
            data,
            largest.width,
            height=largest.height,
            size="down",
            output_profile="srgb",
            fail_on="error",
        )
        base = _to_srgb(base).copy_memory()
    except pyvips.Error as exc:
        raise CorruptImage(f"cannot decode: {_first_line(exc)}") from exc
    renditions = []
    for preset in presets:
        try:
            image = base
            if image.width > preset.width or image.height > preset.height:
                image = base.thumbnail_image(preset.width, height=preset.height, size="down")
            renditions.append(Rendition(preset, _save(image, preset), image.width, image.height))
        except pyvips.Error as exc:
            raise CorruptImage(f"cannot render {preset.name}: {_first_line(exc)}") from exc
    return renditions


def _find_loader(data: bytes) -> str:
    """The libvips loader that would open ``data``, found by sniffing only (nothing is decoded)."""
    pointer = pyvips.vips_lib.vips_foreign_find_load_buffer(data, len(data))
    if pointer == pyvips.ffi.NULL:
        pyvips.vips_lib.vips_error_clear()
        raise UnsupportedFormat("not an image format libvips recognises")
    type_name = pyvips.ffi.string(pointer).decode()
    return str(pyvips.nickname_find(pyvips.type_from_name(type_name)))


def _to_srgb(image: Any) -> Any:
    if image.interpretation not in ("srgb",):
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def _save(image: Any, preset: Preset) -> bytes:
    if image.hasalpha() and preset.format == "jpeg":
        image = image.flatten(background=[255, 255, 255])
    keep = {"keep": "none"}
    if preset.format == "jpeg":
        out = image.jpegsave_buffer(Q=preset.quality, optimize_coding=True, **keep)
    elif preset.format == "webp":
        out = image.webpsave_buffer(Q=preset.quality, **keep)
    elif preset.format == "png":
        out = image.pngsave_buffer(**keep)
    else:
        out = image.heifsave_buffer(Q=preset.quality, compression="av1", **keep)
    return bytes(out)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
