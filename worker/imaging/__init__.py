"""The processing core (pure, synchronous): image bytes + presets -> renditions.

This package is the only place that imports pyvips. It does no I/O of its own: the pipeline runs
:func:`render` in a thread pool and does the S3 reads and writes around it.

What it guarantees for every rendition: upright (EXIF orientation applied, tag gone), sRGB (embedded
profiles converted, relative colorimetric with black-point compensation: see ``colour``), metadata
stripped unless a preset keeps the ICC profile or copyright, fits the preset's box, never upscaled unless
asked, never 0 px, byte-identical on re-run. What it refuses, with a typed
:class:`~worker.core.errors.ImageError`, before decoding pixels: formats outside the allow-list, images over
the size, frame, progressive or memory limits; while decoding: corrupt or truncated data, and anything
still running at the time limit.
"""

from worker.core.limits import DEFAULT_LIMITS, Limits
from worker.imaging.build import build_info
from worker.imaging.colour import builtin_profile, has_builtin_profile
from worker.imaging.core import LOADER_FORMATS, Header, Rendition, probe, render

__all__ = [
    "DEFAULT_LIMITS",
    "LOADER_FORMATS",
    "Header",
    "Limits",
    "Rendition",
    "build_info",
    "builtin_profile",
    "has_builtin_profile",
    "probe",
    "render",
]
