"""Colour management: every embedded profile converted to sRGB once, at the base decode (lcms via libvips).

Rendering intent: **relative colorimetric with black-point compensation** (the conversion Photoshop and
most viewers default to). In-gamut colours keep their measured values, out-of-gamut ones are clipped to
the sRGB gamut edge, and the source's black maps to sRGB black (so CMYK and matte profiles keep their
shadows instead of coming out grey). Matrix profiles (Adobe RGB, ProPhoto, Display P3) carry no perceptual
tables, so perceptual would fall back to relative for them anyway.

What is converted, and from which profile:

- an embedded ICC profile that is not sRGB (RGB wide-gamut, LUT profiles such as the XYB JPEGs that
  ``cjpegli --xyb`` writes, greyscale profiles, 8- and 16-bit): from that profile;
- CMYK without a profile: from libvips' built-in CMYK profile (its documented fallback);
- AVIF/HEIF without an ICC profile whose ``nclx`` box names Display P3 primaries with an SDR transfer:
  from libvips' built-in Display P3 profile. HDR transfers (PQ, HLG) are not tone-mapped (left as decoded).

Untagged images and sRGB-tagged ones are not touched (no cost, the same bytes as before): a profile counts as
sRGB when it maps a grid of colours onto themselves to within one level, decided once per distinct profile.
An embedded profile lcms cannot use (corrupt, or for another colour space than the pixels) is ignored, as
libvips itself does. libvips < 8.15 uses a LUT profile only for intents it has tables for (else it falls
back to sRGB without a word), so a profile with perceptual tables only is converted perceptually there.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any

import pyvips

from worker.imaging.markers import Nclx

INTENT = "relative"
BLACK_POINT_COMPENSATION = True
SRGB = "srgb"  # libvips' built-in profiles, by name
CMYK_FALLBACK = "cmyk"
DISPLAY_P3 = "p3"
_ICC = "icc-profile-data"
_SRGB_TOLERANCE = 1  # levels (0-255) a profile may move any grid colour and still count as sRGB
_GRID = (0, 32, 64, 96, 128, 160, 192, 224, 255)
_P3_PRIMARIES = 12  # ITU-T H.273 ColourPrimaries: SMPTE EG 432-1 (Display P3, D65)
_SDR_TRANSFERS = frozenset({1, 2, 6, 13, 14, 15})  # BT.709, unspecified, BT.601, sRGB, BT.2020 10/12-bit


@dataclass(frozen=True)
class Conversion:
    """How one image gets to sRGB: from its embedded profile, or from a named built-in one."""

    input_profile: str | None  # None: the embedded profile
    before_resize: bool  # CMYK is converted before thumbnail_image, which would otherwise import it itself
    intent: str = INTENT  # perceptual only for LUT profiles an older libvips won't use for relative


def plan(image: Any, nclx: Nclx | None = None) -> Conversion | None:
    """The conversion this freshly loaded image needs, or None when its pixels already are sRGB."""
    cmyk = image.interpretation == "cmyk"
    if image.get_typeof(_ICC) != 0:
        verdict = _profile_verdict(bytes(image.get(_ICC)), _probe_kind(image))
        if verdict in ("relative", "perceptual"):
            return Conversion(None, before_resize=cmyk, intent=verdict)
        if verdict == "srgb":
            return None
    if cmyk:
        return Conversion(CMYK_FALLBACK, before_resize=True)
    p3 = nclx is not None and nclx.primaries == _P3_PRIMARIES and nclx.transfer in _SDR_TRANSFERS
    if p3 and image.bands in (3, 4) and has_builtin_profile(DISPLAY_P3):
        return Conversion(DISPLAY_P3, before_resize=False)
    return None


def detach(image: Any, conversion: Conversion) -> Any:
    """The image ready for thumbnail_image: converted already (CMYK), or with its profile set aside so
    thumbnail_image resizes the device values without importing and exporting them itself."""
    if conversion.before_resize:
        return to_srgb(image, conversion)
    if image.get_typeof(_ICC) == 0:
        return image
    image = image.copy()
    image.remove(_ICC)
    return image


def attach(resized: Any, original: Any, conversion: Conversion) -> Any:
    """The resized image converted to sRGB 8-bit (the profile put back first when it was set aside)."""
    if conversion.before_resize:
        return resized
    if conversion.input_profile is None:
        resized = resized.copy()
        resized.set_type(pyvips.GValue.blob_type, _ICC, original.get(_ICC))
    return to_srgb(resized, conversion)


def to_srgb(image: Any, conversion: Conversion) -> Any:
    """lcms: the embedded (or named) profile -> libvips' sRGB, 8-bit; greyscale stays greyscale."""
    grey = image.interpretation in ("b-w", "grey16")
    options: dict[str, Any] = {"embedded": conversion.input_profile is None}
    if conversion.input_profile is not None:
        options["input_profile"] = conversion.input_profile
    out = image.icc_transform(
        SRGB, intent=conversion.intent, black_point_compensation=BLACK_POINT_COMPENSATION, depth=8, **options
    )
    return out.colourspace("b-w") if grey else out


def _probe_kind(image: Any) -> tuple[str, int]:
    interpretation = str(image.interpretation)
    colours = 1 if interpretation in ("b-w", "grey16") else 4 if interpretation == "cmyk" else 3
    return ("ushort" if image.format == "ushort" else "uchar", colours)


@functools.lru_cache(maxsize=64)
def _profile_verdict(profile: bytes, kind: tuple[str, int]) -> str:
    """What to do with this profile on these pixels, found by sending a grid of colours through lcms.

    ``srgb``: every grid colour stays where it was (leave the pixels alone); ``relative``: convert with the
    documented intent; ``perceptual``: a LUT profile with tables for the perceptual intent only (XYB
    JPEGs, some scanner profiles), which libvips < 8.15 will not use for any other intent (it silently
    falls back to sRGB, where lcms itself would use those tables); ``unusable``: lcms refuses it.
    """
    pixel_format, colours = kind
    if colours == 4:  # a CMYK profile is never sRGB; check only that lcms accepts it
        grid: list[tuple[int, ...]] = [(0, 0, 0, 0), (255, 255, 255, 255)]
    elif colours == 1:
        grid = [(level,) for level in _GRID]
    else:
        grid = list(itertools.product(_GRID, repeat=3))
    scale = 257 if pixel_format == "ushort" else 1
    flat = [value * scale for pixel in grid for value in pixel]
    probe = pyvips.Image.new_from_array([flat], interpretation="multiband").cast(pixel_format)
    probe = probe.bandfold(factor=colours) if colours > 1 else probe
    interpretation = {1: "b-w", 3: "srgb", 4: "cmyk"}[colours]
    if pixel_format == "ushort":
        interpretation = {"b-w": "grey16", "srgb": "rgb16"}.get(interpretation, interpretation)
    probe = probe.copy(interpretation=interpretation)
    probe.set_type(pyvips.GValue.blob_type, _ICC, profile)
    expected = [value for pixel in grid for value in (pixel * 3 if colours == 1 else pixel)]
    for intent in (INTENT, "perceptual"):
        try:
            out = probe.icc_transform(
                SRGB, embedded=True, intent=intent, black_point_compensation=BLACK_POINT_COMPENSATION, depth=8
            )
            values = out.bandunfold().tolist()[0] if out.bands > 1 else out.tolist()[0]
        except pyvips.Error:
            pyvips.vips_lib.vips_error_clear()
            return "unusable"
        if colours == 4:
            return intent
        if len(values) != len(expected):  # not sRGB out: a profile for other pixels (grey on RGB)
            return "unusable"
        if max(abs(a - b) for a, b in zip(values, expected, strict=True)) > _SRGB_TOLERANCE:
            return intent
    return "srgb"


@functools.cache
def builtin_profile(name: str) -> bytes:
    """One of the ICC profiles libvips ships (``srgb``, ``p3``, ``cmyk``), as bytes."""
    probe = (pyvips.Image.black(1, 1, bands=3) + 128).cast("uchar").copy(interpretation="srgb")
    return bytes(probe.icc_transform(name, input_profile=SRGB).get(_ICC))


def has_builtin_profile(name: str) -> bool:
    """Whether this libvips build ships that profile (8.14 and 8.18 have all three; checked, not assumed)."""
    try:
        builtin_profile(name)
    except pyvips.Error:
        pyvips.vips_lib.vips_error_clear()
        return False
    return True
