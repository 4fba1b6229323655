"""What a manifest says about the upload itself: format, upright size, ThumbHash and dominant colour.

Nothing here decodes the source again. The format and upright size come from :func:`probe` (the header
only), and the placeholder pixels from the smallest rendition that shows the whole picture (an ``inside``
still; a ``cover`` crop only when there is no other), shrunk to at most :data:`PLACEHOLDER_SIDE` pixels.
ThumbHash keeps at most 7 cosines per axis and its decoders draw 32 pixels, so 32 samples lose nothing a
placeholder shows, and the encoder costs ~2 ms instead of ~20 ms at the specification's 100.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyvips

from worker.core.errors import CorruptImage
from worker.core.limits import DEFAULT_LIMITS, Limits
from worker.imaging.core import Rendition, probe
from worker.imaging.palette import dominant_colour
from worker.imaging.thumbhash import rgba_to_thumbhash

PLACEHOLDER_SIDE = 32


@dataclass(frozen=True)
class SourceSummary:
    format: str
    width: int  # upright (EXIF orientation applied)
    height: int
    thumbhash: str | None  # base64 of the ThumbHash bytes; None when no rendition is a still
    dominant_colour: str | None  # "#rrggbb"; None when nothing is at least half opaque


def placeholder_rendition(renditions: Sequence[Rendition]) -> Rendition | None:
    """The smallest still that shows the whole picture, else the smallest still, else None."""
    stills = [r for r in renditions if not r.preset.animated]
    whole = [r for r in stills if r.preset.fit == "inside"] or stills
    return min(whole, key=lambda r: (r.width * r.height, r.preset.name), default=None)


def summarise(data: bytes, renditions: Sequence[Rendition], limits: Limits = DEFAULT_LIMITS) -> SourceSummary:
    """The manifest's facts about ``data``, which :func:`~worker.imaging.render` made ``renditions`` of."""
    header = probe(data, limits)
    width, height = header.upright
    chosen = placeholder_rendition(renditions)
    thumbhash = colour = None
    if chosen is not None:
        w, h, rgba = _rgba(chosen.data)
        thumbhash = base64.b64encode(rgba_to_thumbhash(w, h, rgba)).decode("ascii")
        colour = dominant_colour(rgba)
    return SourceSummary(header.format, width, height, thumbhash, colour)


def _rgba(data: bytes) -> tuple[int, int, bytes]:
    """A rendition (our own output) as sRGB RGBA, 8-bit, at most PLACEHOLDER_SIDE on its long side."""
    try:
        image: Any = pyvips.Image.thumbnail_buffer(
            data, PLACEHOLDER_SIDE, height=PLACEHOLDER_SIDE, size="down", import_profile="srgb"
        )
        if image.interpretation != "srgb":
            image = image.colourspace("srgb")
        if image.format != "uchar":
            image = image.cast("uchar")
        if not image.hasalpha():
            image = image.bandjoin(255)
        return int(image.width), int(image.height), bytes(image.write_to_memory())
    except pyvips.Error as exc:  # our own encoder's output: a bug, not a bad upload
        raise CorruptImage(f"cannot read back the {len(data)}-byte rendition: {exc}") from exc
