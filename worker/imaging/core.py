"""Image bytes + presets -> renditions, with libvips (pure, synchronous, no I/O).

Order of work for one upload:

1. :func:`probe` sniffs the loader from the first bytes and refuses anything outside the allow-list
   (SVG, PDF, ImageMagick, JPEG 2000, ... never reach a decoder; libvips' untrusted loaders are blocked
   process-wide as well), then reads the header only and checks bytes, width x height x frames, the
   progressive-JPEG cap and the memory estimate against :class:`~worker.core.limits.Limits`.
2. One shrink-on-load decode to the largest size any preset needs: EXIF orientation applied (all eight,
   the mirrored ones too), every embedded profile that is not sRGB (or libvips' CMYK fallback, or an AVIF's
   nclx Display P3) converted to sRGB once, relative colorimetric with black-point compensation
   (:mod:`worker.imaging.colour`), 16-bit scaled to 8-bit. ``fail_on="error"``: truncated or corrupt
   data is an error, not a grey block.
3. Every preset is cut from that one in-memory base (resize, cover crop), flattened where the format (or
   the preset) has no alpha, and encoded with every piece of metadata stripped unless the preset keeps the
   ICC profile or the copyright line (:mod:`worker.imaging.encode`). Encoders are deterministic, so the same
   input gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyvips

from worker.core.budget import budget_for, current_reservation
from worker.core.errors import CorruptImage, ImageError, ImageTooLarge, RenderTimeout, UnsupportedFormat
from worker.core.limits import DEFAULT_LIMITS, Limits, estimate_peak_bytes
from worker.core.presets import Preset
from worker.imaging import colour, heif
from worker.imaging.encode import ICC_ASIDE, field, finish, save
from worker.imaging.guard import Deadline
from worker.imaging.markers import heif_nclx, jpeg_is_progressive

# The only loaders that may ever run, and the format name each one reads. heifload reads AVIF and HEIC:
# the header's compression tells which. uhdrload (libvips >= 8.17) is the JPEG loader for Ultra HDR files.
LOADER_FORMATS = {
    "jpegload_buffer": "jpeg",
    "uhdrload_buffer": "jpeg",
    "pngload_buffer": "png",
    "webpload_buffer": "webp",
    "gifload_buffer": "gif",
    "tiffload_buffer": "tiff",
    "heifload_buffer": "heif",
}
ANIMATED_INPUTS = ("gif", "webp")
FAIL_ON = "error"  # truncated and corrupt input fail; mere warnings (odd EXIF, extra bytes) do not
_PREMATURE_END = ("premature end of JPEG image", "Premature end of input file", "Premature end of JPEG file")
_NO_CODEC = "compression format has not been built in"
# libvips/codec messages that mean "valid file, variant this build can't read" rather than "broken file"
_UNSUPPORTED_VARIANT = ("Unsupported feature", "Unsupported JPEG data precision", "is not configured")

pyvips.block_untrusted_set(True)  # belt and braces behind the allow-list
pyvips.cache_set_max(0)  # every upload is new: caching operations would only pin input buffers in memory


@dataclass(frozen=True)
class Header:
    loader: str
    format: str  # one of worker.core.limits.KNOWN_FORMATS
    width: int  # as stored
    height: int
    frames: int  # frames that will be decoded (1 unless a preset asks for animation)
    orientation: int = 1
    progressive: bool = False

    @property
    def upright(self) -> tuple[int, int]:
        """Width and height once the EXIF orientation is applied."""
        return (self.height, self.width) if self.orientation in (5, 6, 7, 8) else (self.width, self.height)

    @property
    def peak_bytes(self) -> int:
        return estimate_peak_bytes(
            self.format, self.width, self.height, self.frames, progressive=self.progressive
        )


@dataclass(frozen=True)
class Rendition:
    preset: Preset
    data: bytes
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return self.preset.content_type


def probe(data: bytes, limits: Limits = DEFAULT_LIMITS, *, animated: bool = False) -> Header:
    """Read the header only and enforce the allow-list and size limits; nothing is decoded."""
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"{len(data)} bytes is over the {limits.max_bytes}-byte limit")
    if not data:
        raise CorruptImage("empty object")
    loader = _find_loader(data)
    fmt = LOADER_FORMATS.get(loader)
    if fmt is None:
        raise UnsupportedFormat(f"{loader.removesuffix('_buffer')} input is not accepted")
    try:
        image = pyvips.Image.new_from_buffer(data, "", access="sequential", fail_on=FAIL_ON)
        if fmt == "heif":
            fmt = "avif" if field(image, "heif-compression", "") == "av1" else "heic"
        pages = int(field(image, "n-pages", 1)) if animated and fmt in ANIMATED_INPUTS else 1
        orientation = int(field(image, "orientation", 1))
        width, height = int(image.width), int(image.height)
    except pyvips.Error as exc:
        if any(marker in str(exc) for marker in _UNSUPPORTED_VARIANT):
            raise UnsupportedFormat(f"unsupported {fmt} variant: {_last_line(exc)}") from exc
        raise CorruptImage(f"unreadable header: {_last_line(exc)}") from exc
    if fmt not in limits.formats:
        raise UnsupportedFormat(f"{fmt} input is not accepted (allowed: {', '.join(sorted(limits.formats))})")
    if fmt == "heic":  # libvips in the wheel has no HEVC decoder: pi-heif's libheif decodes (imaging/heif.py)
        loader, (width, height) = heif.LOADER, heif.dimensions(data)
    header = Header(
        loader=loader,
        format=fmt,
        width=width,
        height=height,
        frames=max(pages, 1),
        orientation=orientation if 1 <= orientation <= 8 else 1,
        progressive=fmt == "jpeg" and jpeg_is_progressive(data),
    )
    _check_size(header, limits)
    return header


def _check_size(header: Header, limits: Limits) -> None:
    if header.width < 1 or header.height < 1:
        raise CorruptImage(f"header says {header.width}x{header.height}")
    pixels = header.width * header.height * header.frames
    size = f"{header.width}x{header.height}" + (f"x{header.frames} frames" if header.frames > 1 else "")
    if pixels > limits.max_pixels:
        raise ImageTooLarge(f"{size} ({pixels / 1e6:.1f} MP) is over {limits.max_pixels / 1e6:g} MP")
    if header.frames > limits.max_frames:
        raise ImageTooLarge(f"{header.frames} frames is over the {limits.max_frames}-frame limit")
    if header.progressive and header.width * header.height > limits.max_progressive_pixels:
        raise ImageTooLarge(
            f"progressive JPEG {size} is over {limits.max_progressive_pixels / 1e6:g} MP "
            "(progressive JPEGs must be decoded whole)"
        )


def render(data: bytes, presets: Sequence[Preset], limits: Limits = DEFAULT_LIMITS) -> list[Rendition]:
    """Render every preset from one decode; raise an :class:`~worker.core.errors.ImageError` subclass."""
    if not presets:
        return []
    header = probe(data, limits, animated=any(p.animated for p in presets))
    reservation = current_reservation()  # inside the pipeline: grow the message's own, never wait
    with (
        reservation.render(header.peak_bytes)
        if reservation is not None
        else budget_for(limits.memory_budget_bytes).hold(header.peak_bytes),
        Deadline(limits.timeout_seconds) as deadline,
    ):
        try:
            return _render(data, header, presets, deadline)
        except pyvips.Error as exc:
            if deadline.killed or deadline.expired:
                raise RenderTimeout(f"stopped at the {limits.timeout_seconds:g} s time limit") from exc
            message = _last_line(exc)
            if _NO_CODEC in str(exc):
                raise UnsupportedFormat(f"{header.format}: this libvips build cannot decode it") from exc
            if any(marker in str(exc) for marker in _UNSUPPORTED_VARIANT):
                raise UnsupportedFormat(f"unsupported {header.format} variant: {message}") from exc
            raise CorruptImage(f"cannot decode {header.format}: {message}") from exc


def _render(data: bytes, header: Header, presets: Sequence[Preset], deadline: Deadline) -> list[Rendition]:
    stills = [p for p in presets if not p.animated]
    base = _decode_base(data, header, stills, deadline) if stills else None
    # Largest first, so each "inside" preset is cut from the smallest rendition already made that is
    # still at least as large (128 from 512 rather than from 1024): a cascade from one decode.
    made: dict[str, Rendition] = {}
    sources: list[Any] = [] if base is None else [base]
    for preset in sorted(presets, key=lambda p: -p.width * p.height):
        deadline.check(f"preset {preset.name}")
        if preset.animated:
            image = _decode_animated(data, header, preset, deadline)
            height = int(field(image, "page-height", image.height))
        else:
            image = _fit(sources, header, preset)
            height = image.height
            if preset.fit == "inside":
                sources.append(image)
        out = save(deadline.watch(finish(image, preset)), preset)
        made[preset.name] = Rendition(preset, out, int(image.width), int(height))
    deadline.check("encode")
    return [made[preset.name] for preset in presets]


def _scale(preset: Preset, upright: tuple[int, int]) -> float:
    width, height = upright
    sx, sy = preset.width / width, preset.height / height
    scale = max(sx, sy) if preset.fit == "cover" else min(sx, sy)
    return scale if preset.upscale else min(scale, 1.0)


def _decode_base(data: bytes, header: Header, presets: Sequence[Preset], deadline: Deadline) -> Any:
    """One shrink-on-load decode at the largest scale any preset needs: upright, sRGB, 8-bit, in memory."""
    scale = max(_scale(p, header.upright) for p in presets)
    width, height = header.upright
    box = (max(1, math.ceil(width * scale - 1e-9)), max(1, math.ceil(height * scale - 1e-9)))
    try:
        return _decode(data, header, box, scale > 1, deadline, FAIL_ON)
    except pyvips.Error as exc:
        if header.format != "jpeg" or deadline.killed or not any(m in str(exc) for m in _PREMATURE_END):
            raise
        base = _decode(data, header, box, scale > 1, deadline, "none")
        _check_short_tail(base, header, exc)
        return base


def _decode(
    data: bytes, header: Header, box: tuple[int, int], upscale: bool, deadline: Deadline, fail_on: str
) -> Any:
    """Load with the format's own shrink-on-load, then resize to fit ``box`` (autorotated, sRGB)."""
    width, height = header.upright
    options: dict[str, Any] = {}
    if header.loader == "jpegload_buffer":
        # The largest DCT scale (1/2, 1/4, 1/8) that still covers the box, as Pillow's draft picks it.
        # libvips' thumbnail_buffer keeps a 2x margin for sharpness, i.e. decodes up to 4x the pixels;
        # the lanczos reduce after the DCT shrink keeps thumbnails sharp. Measured: make bench-imaging.
        factor = min(width / box[0], height / box[1])
        options["shrink"] = next((shrink for shrink in (8, 4, 2) if factor >= shrink), 1)
    elif header.loader == "webpload_buffer" and not upscale:
        options["scale"] = min(1.0, max(box[0] / width, box[1] / height))
    if header.frames > 1:
        options["n"] = -1
    # Every loader option goes to the loader itself: thumbnail_buffer's own fail_on argument is accepted
    # but not passed on, and a truncated JPEG then decodes to a grey block without any error.
    source = (
        heif.load(data)
        if header.loader == heif.LOADER
        else pyvips.Image.new_from_buffer(data, "", access="sequential", fail_on=fail_on, **options)
    )
    deadline.watch(source)
    # Colour management once, here: the presets are all cut from this sRGB base (see imaging/colour.py).
    conversion = colour.plan(source, heif_nclx(data) if header.format in ("avif", "heic") else None)
    prepared = source if conversion is None else colour.detach(source, conversion)
    image = prepared.thumbnail_image(box[0], height=box[1], size="both" if upscale else "down")
    if conversion is not None:
        image = colour.attach(image, source, conversion)
    return _set_icc_aside(deadline.watch(_to_srgb8(image)).copy_memory())


def _set_icc_aside(image: Any) -> Any:
    """Park the (now sRGB) profile under another name so resizing the base never colour-converts again.

    thumbnail_image treats an attached profile as a cue to import and export through lcms, which cost
    more than the resizes themselves when every preset was cut from the base (measured 27-40 ms/img).
    """
    if image.get_typeof("icc-profile-data") == 0:
        return image
    profile = image.get("icc-profile-data")
    image = image.copy()
    image.remove("icc-profile-data")
    image.set_type(pyvips.GValue.blob_type, ICC_ASIDE, profile)
    return image


def _check_short_tail(base: Any, header: Header, error: pyvips.Error) -> None:
    """A JPEG whose data ends early is accepted only when the missing part is too small to see.

    libjpeg fills the blocks it never received with the last DC value and no detail, so whenever more than
    the last few blocks are missing the stored bottom rows come out flat. Real cameras sometimes write a
    file a few bytes short (one photo in the corpus); a cut-off upload leaves a flat band and is refused.
    """
    stored_bottom = {1: "bottom", 2: "bottom", 3: "top", 4: "top", 5: "right", 6: "left"}.get(
        header.orientation, "right" if header.orientation == 8 else "left"
    )
    if stored_bottom == "bottom":
        edge = base.crop(0, base.height - 1, base.width, 1)
    elif stored_bottom == "top":
        edge = base.crop(0, 0, base.width, 1)
    elif stored_bottom == "right":
        edge = base.crop(base.width - 1, 0, 1, base.height)
    else:
        edge = base.crop(0, 0, 1, base.height)
    if max(edge.width, edge.height) < 16 or edge.deviate() < 0.5:
        raise error


def _decode_animated(data: bytes, header: Header, preset: Preset, deadline: Deadline) -> Any:
    scale = _scale(preset, header.upright)
    width, height = header.upright
    box = (max(1, math.ceil(width * scale - 1e-9)), max(1, math.ceil(height * scale - 1e-9)))
    return _decode(data, header, box, scale > 1, deadline, FAIL_ON)


def _fit(sources: Sequence[Any], header: Header, preset: Preset) -> Any:
    """This preset's geometry, cut from the smallest earlier image that is large enough (in memory)."""
    base = sources[0]
    width, height = header.upright
    if preset.fit == "inside":
        # the size from the source's own dimensions, so cascading adds no rounding drift
        scale = _scale(preset, header.upright)
        target = (
            max(1, min(preset.width, round(width * scale))) if scale * width >= 1 else 1,
            max(1, min(preset.height, round(height * scale))) if scale * height >= 1 else 1,
        )
        fitting = [im for im in sources if im.width >= target[0] and im.height >= target[1]]
        source = min(fitting, key=lambda im: im.width * im.height) if fitting else base
        if (source.width, source.height) == target:
            return source
        return source.thumbnail_image(target[0], height=target[1], size="force").copy_memory()
    covers = preset.upscale or (width >= preset.width and height >= preset.height)
    if not covers:  # too small to fill the box without upscaling: crop to the box, keep the scale
        return base.crop(
            (base.width - min(base.width, preset.width)) // 2,
            (base.height - min(base.height, preset.height)) // 2,
            min(base.width, preset.width),
            min(base.height, preset.height),
        )
    return base.thumbnail_image(preset.width, height=preset.height, size="both", crop=preset.crop)


def _to_srgb8(image: Any) -> Any:
    """sRGB (or greyscale) 8-bit; colour.to_srgb has already converted any profile that is not sRGB."""
    grey = image.interpretation in ("b-w", "grey16")
    if image.interpretation not in ("srgb", "b-w"):
        image = image.colourspace("b-w" if grey else "srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def _find_loader(data: bytes) -> str:
    """The libvips loader that would open ``data``, found by sniffing only (nothing is decoded)."""
    pointer = pyvips.vips_lib.vips_foreign_find_load_buffer(data, len(data))
    if pointer == pyvips.ffi.NULL:
        pyvips.vips_lib.vips_error_clear()
        raise UnsupportedFormat("not an image format thumbx reads")
    type_name = pyvips.ffi.string(pointer).decode()
    return str(pyvips.nickname_find(pyvips.type_from_name(type_name)))


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__


__all__ = ["Header", "ImageError", "Rendition", "probe", "render"]
