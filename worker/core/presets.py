"""Thumbnail presets: what to render for each upload (pure).

A preset spec is ``name:size:format[:key=value...]``, several separated by commas, e.g.
``sm:128:webp,md:512:jpeg:q=80,lg:1024:jpeg,sq:256x256:webp:fit=cover:crop=entropy``. ``size`` is a box
(``512`` or ``640x480``). Options:

``q=1..100``                 encoder quality (default 80; ignored by PNG)
``fit=inside|cover``         ``inside`` (default): the whole image fits inside the box; ``cover``: the
                             image fills the box exactly and the overflow is cropped
``crop=attention|entropy|centre``  which part ``cover`` keeps (default ``attention``)
``up=0|1``                   allow upscaling small images to the box (default 0: never upscale)
``alpha=keep|flatten``       keep transparency where the format has it (default), or flatten on ``bg``
                             (JPEG always flattens)
``bg=RRGGBB``                background for flattening (default ``ffffff``)
``anim=0|1``                 keep every frame of animated GIF/WebP input (WebP output only; default 0:
                             first frame)
``keep=none|icc|copyright|icc+copyright``  metadata to keep; everything else (EXIF, GPS, XMP, IPTC) is
                             always stripped (default ``none``)
``huffman=optimal|standard``  JPEG only: entropy-code with tables optimised for the image (default) or
                             with the standard tables: the same pixels, ~2% more bytes, ~5 ms less CPU per
                             1024 + 512 + 128 photo (``python -m bench.profile_core``)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from worker.core.errors import ConfigError

FORMATS: dict[str, tuple[str, str]] = {
    # format -> (file extension, content type)
    "jpeg": ("jpg", "image/jpeg"),
    "webp": ("webp", "image/webp"),
    "png": ("png", "image/png"),
    "avif": ("avif", "image/avif"),
}
FITS = ("inside", "cover")
CROPS = ("attention", "entropy", "centre")
ALPHAS = ("keep", "flatten")
KEEPABLE = ("icc", "copyright")
HUFFMAN = ("optimal", "standard")
ANIMATED_FORMATS = ("webp",)
WHITE = (255, 255, 255)
DEFAULT_PRESETS = "sm:128:webp:q=80,md:512:jpeg:q=80,lg:1024:jpeg:q=80"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_BOX = re.compile(r"^(\d{1,5})(?:x(\d{1,5}))?$")
_COLOUR = re.compile(r"^#?([0-9a-fA-F]{6})$")
T = TypeVar("T")
_FLAGS = {"0": False, "1": True, "false": False, "true": True, "no": False, "yes": True}


@dataclass(frozen=True)
class Preset:
    name: str
    width: int
    height: int
    format: str = "jpeg"
    quality: int = 80
    fit: str = "inside"
    crop: str = "attention"
    upscale: bool = False
    alpha: str = "keep"
    background: tuple[int, int, int] = WHITE
    animated: bool = False
    keep: tuple[str, ...] = ()
    huffman: str = "optimal"

    @property
    def extension(self) -> str:
        return FORMATS[self.format][0]

    @property
    def content_type(self) -> str:
        return FORMATS[self.format][1]

    @property
    def keeps_alpha(self) -> bool:
        return self.alpha == "keep" and self.format != "jpeg"


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
    values: dict[str, object] = {}
    for option in options:
        key, _, value = option.partition("=")
        if key in values:
            raise ConfigError(f"{variable}: preset {name!r} sets {key!r} twice")
        parsed = _option(key, value.strip())
        if parsed is None:
            raise ConfigError(f"{variable}: preset {name!r} has an unknown or invalid option {option!r}")
        values[key] = parsed
    preset = Preset(
        name=name,
        width=width,
        height=height,
        format=fmt,
        quality=_get(values, "q", 80, int),
        fit=_get(values, "fit", "inside", str),
        crop=_get(values, "crop", "attention", str),
        upscale=_get(values, "up", False, bool),
        alpha=_get(values, "alpha", "keep", str),
        background=_get(values, "bg", WHITE, tuple),
        animated=_get(values, "anim", False, bool),
        keep=_get(values, "keep", (), tuple),
        huffman=_get(values, "huffman", "optimal", str),
    )
    if preset.animated and preset.format not in ANIMATED_FORMATS:
        raise ConfigError(f"{variable}: preset {name!r}: anim=1 needs one of {', '.join(ANIMATED_FORMATS)}")
    if preset.animated and preset.fit != "inside":
        raise ConfigError(f"{variable}: preset {name!r}: anim=1 supports fit=inside only")
    if "crop" in values and preset.fit != "cover":
        raise ConfigError(f"{variable}: preset {name!r}: crop= only applies with fit=cover")
    if "huffman" in values and preset.format != "jpeg":
        raise ConfigError(f"{variable}: preset {name!r}: huffman= only applies to jpeg")
    return preset


def _option(key: str, value: str) -> object | None:
    """The parsed value of one ``key=value`` option, or None when the key or value is invalid."""
    if key == "q":
        return int(value) if value.isdigit() and 1 <= int(value) <= 100 else None
    choices = {"fit": FITS, "crop": CROPS, "alpha": ALPHAS, "huffman": HUFFMAN}
    if key in choices:
        return value if value in choices[key] else None
    if key in ("up", "anim"):
        return _FLAGS.get(value.lower())
    if key == "bg":
        colour = _COLOUR.match(value)
        if not colour:
            return None
        hexa = colour.group(1)
        return tuple(int(hexa[i : i + 2], 16) for i in (0, 2, 4))
    if key == "keep":
        if value == "none":
            return ()
        parts = tuple(sorted(set(value.split("+"))))
        return parts if parts and all(part in KEEPABLE for part in parts) else None
    return None


def _get(values: dict[str, object], key: str, default: T, kind: type) -> T:
    value = values.get(key, default)
    assert isinstance(value, kind)
    return cast(T, value)


def _check_unique(presets: Sequence[Preset], variable: str) -> None:
    seen: set[str] = set()
    for preset in presets:
        if preset.name in seen:
            raise ConfigError(f"{variable}: preset name {preset.name!r} is used twice")
        seen.add(preset.name)
