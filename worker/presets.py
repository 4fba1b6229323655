"""Thumbnail presets: what to render for each upload (pure).

A preset spec is ``name:size:format[:key=value...]``, several separated by commas, e.g.
``sm:128:webp,md:512:jpeg:q=80,lg:1024:jpeg``. ``size`` is a box (``512`` or ``640x480``) the output fits
inside. Options: ``q`` (quality 1-100), ``fit`` (``inside``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from worker.errors import ConfigError

FORMATS: dict[str, tuple[str, str]] = {
    # format -> (file extension, content type)
    "jpeg": ("jpg", "image/jpeg"),
    "webp": ("webp", "image/webp"),
    "png": ("png", "image/png"),
    "avif": ("avif", "image/avif"),
}
FITS = ("inside",)
DEFAULT_PRESETS = "sm:128:webp:q=80,md:512:jpeg:q=80,lg:1024:jpeg:q=80"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_BOX = re.compile(r"^(\d{1,5})(?:x(\d{1,5}))?$")


@dataclass(frozen=True)
class Preset:
    name: str
    width: int
    height: int
    format: str = "jpeg"
    quality: int = 80
    fit: str = "inside"

    @property
    def extension(self) -> str:
        return FORMATS[self.format][0]

    @property
    def content_type(self) -> str:
        return FORMATS[self.format][1]


def parse_presets(spec: str, *, variable: str = "THUMBX_PRESETS") -> tuple[Preset, ...]:
    """Parse a preset spec; raise ConfigError naming ``variable`` on any problem."""
    presets: list[Preset] = []
    for raw in (part.strip() for part in spec.split(",")):
        if not raw:
            continue
        presets.append(_parse_one(raw, variable))
    if not presets:
        raise ConfigError(f"{variable}: no presets given")
    _check_unique(presets, variable)
    return tuple(presets)


def _parse_one(raw: str, variable: str) -> Preset:
    fields = raw.split(":")
    if len(fields) < 3:
        raise ConfigError(f"{variable}: preset {raw!r} is not name:size:format[:key=value...]")
    name, box, fmt, *options = fields
    if not _NAME.match(name):
        raise ConfigError(f"{variable}: preset name {name!r} must be lowercase letters, digits, - or _")
    match = _BOX.match(box)
    if not match:
        raise ConfigError(f"{variable}: preset {name!r} size {box!r} is not N or WxH")
    width = int(match.group(1))
    height = int(match.group(2) or match.group(1))
    if not (1 <= width <= 8192 and 1 <= height <= 8192):
        raise ConfigError(f"{variable}: preset {name!r} size must be 1..8192 px")
    fmt = fmt.lower().replace("jpg", "jpeg")
    if fmt not in FORMATS:
        raise ConfigError(f"{variable}: preset {name!r} format {fmt!r} is not one of {', '.join(FORMATS)}")
    quality, fit = 80, "inside"
    for option in options:
        key, _, value = option.partition("=")
        if key == "q" and value.isdigit() and 1 <= int(value) <= 100:
            quality = int(value)
        elif key == "fit" and value in FITS:
            fit = value
        else:
            raise ConfigError(f"{variable}: preset {name!r} has an unknown or invalid option {option!r}")
    return Preset(name=name, width=width, height=height, format=fmt, quality=quality, fit=fit)


def _check_unique(presets: Sequence[Preset], variable: str) -> None:
    seen: set[str] = set()
    for preset in presets:
        if preset.name in seen:
            raise ConfigError(f"{variable}: preset name {preset.name!r} is used twice")
        seen.add(preset.name)
