"""HEIC/HEIF input (HEVC-coded): libheif + libde265 from the ``pi-heif`` wheel, handed to the core as pyvips.

The pyvips-binary wheel's libvips reads HEIF containers (and decodes AVIF) but has no HEVC decoder, so the
core still sniffs and reads the header with libvips, learns from it that the codec is HEVC (format
``heic``), and then comes here twice: :func:`dimensions` before anything is decoded, for the size limits
and the memory budget, and :func:`load` for the pixels. What :func:`load` returns is an ordinary pyvips
image in memory that goes down the same path as every other format (resize, colour, metadata, encode).

What libheif does and what we do:

- *Primary image only.* A file with several top-level images (bursts, an edited and an original) or an
  image sequence is shown as its primary image, as every viewer shows it; thumbnails, depth maps and
  auxiliary images are not even parsed.
- *Orientation exactly once.* libheif applies the ``irot``/``imir``/``clap`` transforms while decoding,
  so the pixels are upright. Phones also write an EXIF Orientation tag describing the same rotation
  (an iPhone portrait: ``irot`` 270° and EXIF 6); it is never applied again, because the returned image
  carries no orientation at all. This is what libheif, libvips' own heifload and pillow-heif do.
- *Any bit depth to the core's 8 bits.* libheif rounds 10- and 12-bit colour images to 8 bits while
  converting them to RGB. Keeping 16 bits for the colour conversion would double what the decode holds
  (measured on a 12-MP 10-bit file: 214 MB above the process' RSS against 111 MB for the same picture at
  8 bits), for a difference no 8-bit thumbnail shows. Monochrome 10/12-bit arrives as 16-bit ``grey16``.
- *Colour.* An embedded ICC profile is attached as ``icc-profile-data``, so the core converts it to
  sRGB like a JPEG's. An ``nclx`` box (code points, no profile) with Display P3 primaries gets libvips'
  built-in P3 profile attached; BT.709/BT.601/sRGB code points are sRGB already. Wide-gamut BT.2020 and
  HDR transfer functions (PQ, HLG) are passed through unconverted (no tone mapping).
- *Alpha* kept (premultiplied alpha is unpremultiplied first).

libheif's own security limits stay on (pi-heif's default) behind the core's pixel limit. The decode is
one library call that cannot be stopped half-way: the time limit applies at the first libvips step after
it (see :class:`~worker.imaging.guard.Deadline`).
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

import pyvips
from PIL import Image

from worker.core.errors import CorruptImage, ImageError, ImageTooLarge, UnsupportedFormat


def import_isolated(name: str) -> ModuleType:
    """Import a module whose native library must bind to its own libheif, not one already loaded.

    A system libvips (Debian's libvips42, ``make test-system-vips``) loads its heif module with global
    symbols at ``import pyvips``; a wheel's libheif loaded after that would call libheif 1.15's functions
    with 1.23's structures and crash (measured: a segfault in ``open_heif``). ``RTLD_DEEPBIND`` puts the
    wheel's own libraries first in its lookup scope. The pyvips-binary wheel keeps its libheif private,
    so there the flag changes nothing.
    """
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        return importlib.import_module(name)
    finally:
        sys.setdlopenflags(flags)


pi_heif = import_isolated("pi_heif")

LOADER = "pi_heif"  # Header.loader for images this module decodes (not a libvips loader name)

# Parse only what a thumbnail needs: the primary image and its metadata.
pi_heif.options.THUMBNAILS = False
pi_heif.options.DEPTH_IMAGES = False
pi_heif.options.AUX_IMAGES = False

# What pi-heif raises, per its documentation: ValueError (invalid data), EOFError (corrupt data),
# SyntaxError (unsupported feature), RuntimeError (other), OSError (out of memory); IndexError when the
# file holds no image at all.
_ERRORS = (ValueError, EOFError, SyntaxError, RuntimeError, OSError, MemoryError, IndexError, KeyError)
_INTERPRETATION = {  # (colour, 16-bit) -> interpretation
    (False, False): "b-w",
    (False, True): "grey16",
    (True, False): "srgb",
    (True, True): "rgb16",
}
_BANDS = {"L": 1, "I": 1, "LA": 2, "La": 2, "RGB": 3, "RGBA": 4, "RGBa": 4}
_DISPLAY_P3 = 12  # nclx colour_primaries code point (ITU-T H.273): SMPTE EG 432-1, P3 with the D65 white
_EXIF_COPYRIGHT = 0x8298


def dimensions(data: bytes) -> tuple[int, int]:
    """Width and height of the primary image as it will be shown (transforms applied); nothing decoded."""
    width, height = _primary(data).size
    return int(width), int(height)


def load(data: bytes) -> Any:
    """Decode the primary image: an upright pyvips image, 8 or 16 bits, with its colour profile attached."""
    heif = _primary(data)
    try:
        pixels = heif.data
        stride = heif.stride
    except _ERRORS as exc:
        raise _typed(exc, "cannot decode heic") from exc
    width, height = heif.size
    info, layout = heif.info, heif.mode
    mode, _, bits = layout.partition(";")
    bands = _BANDS.get(mode)
    if bands is None:
        raise UnsupportedFormat(f"heic: unsupported pixel layout {layout}")
    sample = 2 if bits else 1
    if stride != width * bands * sample or len(pixels) < stride * height:
        raise CorruptImage(f"heic: decoder returned {len(pixels)} bytes for {width}x{height} {layout}")
    # pi-heif's buffer belongs to the decoder object and is freed with it, which pyvips cannot know:
    # copy it into memory the image owns (measured ~2 ms per megapixel, beside ~30 ms to decode it).
    image = pyvips.Image.new_from_memory(bytes(pixels), width, height, bands, "ushort" if bits else "uchar")
    del heif, pixels
    image = image.copy(interpretation=_INTERPRETATION[bands >= 3, bool(bits)])
    if mode.endswith("a"):  # premultiplied alpha
        image = image.unpremultiply(max_alpha=65535 if bits else 255).cast("ushort" if bits else "uchar")
    profile = info.get("icc_profile") or _nclx_profile(info.get("nclx_profile"))
    if profile:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", bytes(profile))
    copyright_line = _copyright(info.get("exif"))
    if copyright_line:
        image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Copyright", copyright_line)
    return image


def register_pillow_opener() -> None:
    """Let Pillow open HEIC too (the demo's contact sheet draws the sources with Pillow)."""
    pi_heif.register_heif_opener()


def build_info() -> dict[str, str]:
    info = pi_heif.libheif_info()
    return {
        "pi_heif": str(pi_heif.__version__),
        "libheif": str(info.get("libheif", "")),
        "hevc_decoder": ", ".join(str(name) for name in info.get("decoders", {}).values()),
    }


def _primary(data: bytes) -> Any:
    try:
        heif = pi_heif.open_heif(data, convert_hdr_to_8bit=True)
        heif.size  # noqa: B018  (raises IndexError when the file holds no image)
    except _ERRORS as exc:
        raise _typed(exc, "unreadable heic header") from exc
    return heif


def _typed(exc: BaseException, what: str) -> ImageError:
    message = f"{what}: {_text(exc)}"
    if isinstance(exc, IndexError):
        return CorruptImage(f"{what}: no image in the file")
    text = str(exc).lower()
    if isinstance(exc, MemoryError) or ("security limit" in text and "image size" in text):
        return ImageTooLarge(message)  # libheif's own size limits; a malformed box structure is corrupt
    if isinstance(exc, SyntaxError):  # libheif: "Unsupported feature"
        return UnsupportedFormat(message)
    return CorruptImage(message)


def _nclx_profile(nclx: dict[str, Any] | None) -> bytes | None:
    """The ICC profile that describes nclx colour, when it is not sRGB already (Display P3 only)."""
    if not nclx or nclx.get("color_primaries") != _DISPLAY_P3:
        return None
    try:
        return bytes(pyvips.Operation.call("profile_load", "p3"))
    except pyvips.Error:  # a libvips without the built-in profile: leave the image untagged (sRGB)
        return None


def _copyright(exif: bytes | None) -> str | None:
    """The EXIF copyright line (for ``keep=copyright`` presets); libvips parses EXIF only in its loaders."""
    if not exif:
        return None
    try:
        tags = Image.Exif()
        tags.load(exif)
        value = tags.get(_EXIF_COPYRIGHT)
    except (ValueError, OSError, SyntaxError, KeyError, IndexError):  # broken EXIF is not a broken image
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return text.strip("\x00 ") or None if isinstance(text, str) else None


def _text(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__


__all__ = ["LOADER", "build_info", "dimensions", "import_isolated", "load", "register_pillow_opener"]
