"""What the imaging core is allowed to accept (pure; no pyvips here, so config can import it cheaply).

The defaults follow imgproxy's spirit: 50 MP per image (width x height x frames), one frame unless a preset
asks for animation, a byte cap, an allow-list of formats, a per-image time limit, and a memory budget that
bounds what concurrent renders may hold at once (see :func:`estimate_peak_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Input formats thumbx knows how to name. "avif" and "heic" share libvips' heifload but are told apart by
# the header's compression (AV1 vs HEVC), so an operator can admit one without the other.
KNOWN_FORMATS = ("jpeg", "png", "webp", "gif", "tiff", "avif", "heic")
DEFAULT_FORMATS = frozenset(KNOWN_FORMATS)

MIB = 1024 * 1024
# A source being downloaded is in memory twice for a moment (the read buffer, then the bytes made from it):
# the memory budget counts it so, and a source of max_bytes must fit the budget that often.
READ_COPIES = 2


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * MIB
    max_pixels: int = 50_000_000  # width x height x frames, as imgproxy's default
    max_frames: int = 100  # only relevant when a preset asks for animated output; otherwise 1 frame is read
    formats: frozenset[str] = DEFAULT_FORMATS
    timeout_seconds: float = 20.0  # per image, all presets included; enforced inside libvips (set_kill)
    memory_budget_bytes: int = 1024 * MIB  # shared by all concurrent renders in the process
    max_progressive_pixels: int = 50_000_000  # progressive JPEGs cannot stream: ~3.4 B/pixel


DEFAULT_LIMITS = Limits()


def estimate_peak_bytes(
    fmt: str, width: int, height: int, frames: int = 1, *, progressive: bool = False
) -> int:
    """A conservative estimate of the memory one render of such an image holds at its peak.

    Measured with ``make bench-imaging`` on 100-MP JPEGs made from a corpus photo: a baseline JPEG streams
    (52-80 MB peak RSS for the whole process, almost independent of size) while a progressive one keeps
    every DCT coefficient: 335-365 MB with our DCT shrink-on-load (about 3.4 bytes/pixel; plain
    ``thumbnail_buffer`` needs 930 MB). Formats whose decoders produce whole frames (WebP, GIF, HEIF/AVIF,
    interlaced PNG) hold about one RGBA frame, twice that for 16-bit data: we count 8 bytes/pixel. HEIC
    (libheif through pi-heif, worker/imaging/heif.py) holds the YCbCr planes, the RGB result and the copy
    libvips owns: measured (bench/bench_heic.py and a 12-MP 10-bit 4:4:4 file) 7.4-9.2 bytes/pixel for
    8-bit phone photos, 14.4 for 10-bit; we count 14.
    """
    pixels = width * height * max(frames, 1)
    base = 48 * MIB
    if fmt == "jpeg":
        per_pixel = 4.0 if progressive else 0.5
    elif fmt in ("png", "tiff"):
        per_pixel = 8.0 if progressive else 1.0
    elif fmt == "heic":
        per_pixel = 14.0
    else:
        per_pixel = 8.0
    return base + int(pixels * per_pixel)
