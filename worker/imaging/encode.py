"""The last step of a rendition: flatten where the preset has no alpha, strip metadata, encode (pure, sync).

Every metadata item is removed unless the preset keeps the ICC profile (set aside as :data:`ICC_ASIDE` by
the decoder, after conversion to sRGB) or the EXIF copyright line. libvips >= 8.15 writes none at all with
``keep=0``; older versions get the item-by-item removal. Encoders are deterministic: same pixels, same bytes.
"""

from __future__ import annotations

import re
from typing import Any

import pyvips

from worker.core.presets import Preset
from worker.imaging.markers import webp_without_metadata

_KEEP_FLAGS = pyvips.at_least_libvips(8, 15)
_METADATA_PREFIXES = ("exif-", "xmp-", "iptc-", "png-comment", "gif-comment", "orientation", "gainmap")
ICC_ASIDE = "thumbx-srgb-profile"
_METADATA_NAMES = ("icc-profile-data", "heif-primary", "interlaced")
_EXIF_TEXT = re.compile(r"^(.*?) \(.*, \w+, \d+ components?, \d+ bytes\)$", re.DOTALL)


def finish(image: Any, preset: Preset) -> Any:
    if image.hasalpha() and not preset.keeps_alpha:
        grey = image.bands < 3
        background = [sum(preset.background) / 3] if grey else list(preset.background)
        image = image.flatten(background=background).cast("uchar")
    return _metadata(image, preset)


def _metadata(image: Any, preset: Preset) -> Any:
    """Remove every metadata item except what the preset keeps (geometry items stay).

    A preset that keeps nothing needs no removal: the encoder's ``keep=0`` writes no metadata at all
    (EXIF, XMP, IPTC, ICC, comments, gain map), which the tests check on every output format. Only
    libvips < 8.15, which has ``strip`` instead, gets the item-by-item removal.
    """
    if not preset.keep and _KEEP_FLAGS:
        return image
    image = image.copy()
    copyright_line = field(image, "exif-ifd0-Copyright", None) if "copyright" in preset.keep else None
    profile = field(image, ICC_ASIDE, None)
    for raw in _field_names(image):
        name = raw.decode("utf-8", "replace")
        if name.startswith(_METADATA_PREFIXES) or name in _METADATA_NAMES or name == ICC_ASIDE:
            pyvips.vips_lib.vips_image_remove(image.pointer, raw)
    if profile is not None and "icc" in preset.keep:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", profile)
    if copyright_line:
        # libvips shows EXIF strings as "value (raw, ASCII, n components, m bytes)"
        match = _EXIF_TEXT.match(str(copyright_line))
        text = (match.group(1) if match else str(copyright_line)).strip()
        if text:
            image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Copyright", text)
    return image


def save(image: Any, preset: Preset) -> bytes:
    options: dict[str, Any] = {}
    exif = "copyright" in preset.keep and image.get_typeof("exif-ifd0-Copyright") != 0
    icc = "icc" in preset.keep and image.get_typeof("icc-profile-data") != 0
    if _KEEP_FLAGS:
        flags = pyvips.enums.ForeignKeep
        options["keep"] = (flags.EXIF if exif else 0) | (flags.ICC if icc else 0)
    else:
        options["strip"] = not (exif or icc)
    if preset.format == "jpeg":
        optimize = preset.huffman == "optimal"  # "standard": the same pixels, ~2% more bytes, less CPU
        out = image.jpegsave_buffer(Q=preset.quality, optimize_coding=optimize, **options)
    elif preset.format == "webp":
        out = image.webpsave_buffer(Q=preset.quality, **options)
        if not _KEEP_FLAGS and not exif:
            out = webp_without_metadata(bytes(out))
    elif preset.format == "png":
        out = image.pngsave_buffer(compression=6, **options)
    else:
        out = image.heifsave_buffer(Q=preset.quality, compression="av1", **options)
    return bytes(out)


def _field_names(image: Any) -> list[bytes]:
    """Every metadata name as libvips stores it. ``image.get_fields()`` decodes them as UTF-8 and raises
    on a name that is not (a PNG text chunk's keyword is Latin-1), leaking the rest of the array."""
    array = pyvips.vips_lib.vips_image_get_fields(image.pointer)
    names: list[bytes] = []
    try:
        i = 0
        while array[i] != pyvips.ffi.NULL:
            names.append(bytes(pyvips.ffi.string(array[i])))
            pyvips.glib_lib.g_free(array[i])
            i += 1
    finally:
        pyvips.glib_lib.g_free(array)
    return names


def field(image: Any, name: str, default: Any) -> Any:
    """A metadata value, or ``default`` when absent or when its text is not UTF-8 (pyvips would raise)."""
    if image.get_typeof(name) == 0:
        return default
    try:
        return image.get(name)
    except UnicodeDecodeError:
        return default
