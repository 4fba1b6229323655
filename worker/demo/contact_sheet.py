"""The demo's contact sheet: each source beside its thumbnails, as index.html and contact-sheet.png.

Sources are drawn colour-managed, independently of the imaging core: Pillow decodes them and littleCMS
(Pillow's ImageCms) converts their embedded profile (libvips' CMYK profile for untagged CMYK, as the core
does) to sRGB, relative colorimetric with black-point compensation. index.html shows those sRGB previews
(``previews/``, linked to the original), because browsers cannot show every upload (TIFF, HEIC) and differ
in what they colour-manage; a thumbnail whose colours are off is then visibly off beside its source.

What a reader checks on the sheet, so it is all drawn: every rendition at its own pixel size (up to
:data:`MAX_TILE`), labelled with its size and bytes; a source stored sideways or mirrored (an EXIF
Orientation other than 1) once as stored and once upright, beside the upright thumbnails; a failure's
outcome and detail in full, wrapped. :func:`plan_sheet` is the layout (pure, tested); the PNG draws it.
"""

from __future__ import annotations

import html
import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from PIL import Image, ImageCms, ImageDraw, ImageFont, ImageOps

from worker.imaging import builtin_profile
from worker.imaging.heif import register_pillow_opener

CELL = 256  # the source's tiles (upright and as stored)
MAX_TILE = 1024  # renditions are drawn at their own size up to this; larger ones are scaled to fit
PAD = 12
LINE = 16  # label line height (px) at FONT_SIZE
FONT_SIZE = 13
CHAR_PX = 7  # the default font's average advance at FONT_SIZE, for wrapping
PREVIEW = 512
MIN_COLUMN = 168  # wide enough for a rendition's label (name, size, bytes)
FAILURE_TEXT_WIDTH = 2 * CELL + PAD  # where a failed row's outcome and detail are written

register_pillow_opener()  # Pillow reads HEIC sources for the sheet (libheif applies irot/imir)

ORIENTATION = 0x0112


@dataclass(frozen=True)
class SheetRow:
    source: Path
    thumbnails: Sequence[Path]
    caption: str
    outcome: str = ""  # e.g. "succeeded (rendered)", "permanent (unsupported_format)"
    detail: str = ""  # a failure's detail, shown in full


@dataclass(frozen=True)
class Rendition:
    path: Path
    width: int
    height: int
    bytes: int

    @property
    def label(self) -> str:
        return f"{self.path.name} {self.width}x{self.height} {human_bytes(self.bytes)}"


@dataclass(frozen=True)
class Tile:
    """One drawn tile: ``kind`` is ``upright``, ``stored``, ``rendition`` or ``text`` (a failure)."""

    kind: str
    path: Path | None
    x: int
    y: int
    width: int  # the box the image is drawn into (0 for text)
    height: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class SheetPlan:
    width: int
    height: int
    tiles: tuple[Tile, ...]


def human_bytes(n: int) -> str:
    return f"{n} B" if n < 1000 else f"{n / 1000:.1f} kB" if n < 1_000_000 else f"{n / 1e6:.2f} MB"


def rendition(path: Path) -> Rendition | None:
    """A thumbnail's pixel size (from its header) and bytes; None if Pillow can't read it."""
    try:
        with Image.open(path) as opened:
            width, height = opened.size
    except (OSError, ValueError):
        return None
    return Rendition(path, width, height, path.stat().st_size)


def stored_orientation(path: Path) -> int:
    """The EXIF Orientation the file is stored with (1 when there is none, or the decoder applied it)."""
    try:
        with Image.open(path) as opened:
            value = opened.getexif().get(ORIENTATION, 1)
    except (OSError, ValueError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def write_contact_sheet(rows: Sequence[SheetRow], out_dir: Path) -> tuple[Path, Path]:
    return _write_html(rows, out_dir), _write_png(rows, out_dir)


def _wrap(text: str, width_px: int) -> list[str]:
    return textwrap.wrap(text, max(8, width_px // CHAR_PX), break_long_words=True) or [""]


def _fit(width: int, height: int, box: int) -> tuple[int, int]:
    scale = min(1.0, box / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def plan_sheet(rows: Sequence[SheetRow]) -> SheetPlan:
    """Where each tile goes: columns upright source | as stored (if any row has one) | the renditions at
    their own size, each labelled underneath; a row is as tall as its tallest tile with its label."""
    renditions = [[r for r in (rendition(t) for t in row.thumbnails) if r is not None] for row in rows]
    stored = [stored_orientation(row.source) != 1 for row in rows]
    columns = [CELL, *([CELL] if any(stored) else [])]
    first_rendition = len(columns)
    for i in range(max((len(r) for r in renditions), default=0)):
        sizes = [
            max(_fit(r[i].width, r[i].height, MAX_TILE)[0], MIN_COLUMN) for r in renditions if len(r) > i
        ]
        columns.append(max(sizes))
    xs = [PAD]
    for width in columns[:-1]:
        xs.append(xs[-1] + width + PAD)
    text_x = xs[first_rendition - 1] + CELL + PAD  # a failed row's text: right of the source
    tiles: list[Tile] = []
    y = PAD
    for row, rends, sideways in zip(rows, renditions, stored, strict=True):
        row_tiles: list[Tile] = []
        source_lines = [*_wrap(row.caption, CELL), "upright, colour-managed" if sideways else "source"]
        if not rends and (row.outcome or row.detail):
            text = [*_wrap(row.outcome, FAILURE_TEXT_WIDTH), *_wrap(row.detail, FAILURE_TEXT_WIDTH)]
            row_tiles.append(Tile("text", None, text_x, y, 0, 0, tuple(text)))
        elif row.outcome:
            source_lines.append(row.outcome)
        row_tiles.append(Tile("upright", row.source, xs[0], y, CELL, CELL, tuple(source_lines)))
        if sideways:
            stored_lines = ("as stored", f"EXIF orientation {stored_orientation(row.source)}")
            row_tiles.append(Tile("stored", row.source, xs[1], y, CELL, CELL, stored_lines))
        for i, r in enumerate(rends):
            width, height = _fit(r.width, r.height, MAX_TILE)
            lines = (
                (r.label,)
                if (width, height) == (r.width, r.height)
                else (r.label, f"shown at {width}x{height}")
            )
            row_tiles.append(Tile("rendition", r.path, xs[first_rendition + i], y, width, height, lines))
        row_height = max(t.height + 4 + len(t.lines) * LINE for t in row_tiles)
        tiles += row_tiles
        y += row_height + PAD
    width = max(xs[-1] + columns[-1] + PAD, text_x + FAILURE_TEXT_WIDTH + PAD)
    return SheetPlan(width, max(y, PAD + CELL + PAD), tuple(tiles))


def _write_html(rows: Sequence[SheetRow], out_dir: Path) -> Path:
    lines = [
        "<!doctype html><meta charset=utf-8><title>thumbx contact sheet</title>",
        "<style>body{font-family:sans-serif;background:#222;color:#eee}td{padding:8px;vertical-align:top}"
        "img{background:repeating-conic-gradient(#555 0 25%,#777 0 50%) 0/16px 16px}"
        "img.source{max-width:256px;max-height:256px}.failure{color:#f88;max-width:40em}"
        "</style>",
        "<h1>thumbx contact sheet</h1><table>",
    ]
    for row in rows:
        original = _url(row.source, out_dir)
        preview = _write_preview(row.source, out_dir)
        shown = _url(preview, out_dir) if preview is not None else original
        sideways = stored_orientation(row.source)
        cells = [f"<td><a href='{original}'><img class=source src='{shown}'></a><br>"
                 f"{'upright, ' if sideways != 1 else ''}sRGB preview</td>"]  # fmt: skip
        if sideways != 1:
            stored = _write_preview(row.source, out_dir, orient=False)
            if stored is not None:
                cells.append(
                    f"<td><img class=source src='{_url(stored, out_dir)}'><br>"
                    f"as stored (EXIF orientation {sideways})</td>"
                )
        for thumb in row.thumbnails:
            info = rendition(thumb)
            size = f" width={info.width} height={info.height}" if info is not None else ""
            label = info.label if info is not None else thumb.name
            cells.append(f"<td><img src='{_url(thumb, out_dir)}'{size}><br>{html.escape(label)}</td>")
        head = f"<b>{html.escape(row.caption)}</b><br>{html.escape(row.outcome)}"
        if row.detail:
            head += f"<br><span class=failure>{html.escape(row.detail)}</span>"
        lines.append(f"<tr><td>{head}</td>{''.join(cells)}</tr>")
    lines.append("</table>")
    path = out_dir / "index.html"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _write_png(rows: Sequence[SheetRow], out_dir: Path) -> Path:
    plan = plan_sheet(rows)
    sheet = Image.new("RGB", (plan.width, plan.height), (34, 34, 34))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=FONT_SIZE)
    for tile in plan.tiles:
        if tile.kind == "text":
            for i, line in enumerate(tile.lines):
                draw.text((tile.x, tile.y + i * LINE), line, fill=(255, 140, 140), font=font)
            continue
        assert tile.path is not None
        box = max(tile.width, tile.height)
        image = _tile(tile.path, box, orient=tile.kind != "stored")
        if image is not None:
            if image.size != (tile.width, tile.height) and tile.kind == "rendition":
                image = image.resize((tile.width, tile.height))
            sheet.paste(
                image, (tile.x + (tile.width - image.width) // 2, tile.y + (tile.height - image.height) // 2)
            )
        else:
            draw.rectangle([tile.x, tile.y, tile.x + tile.width, tile.y + tile.height], outline=(200, 60, 60))
        for i, line in enumerate(tile.lines):
            draw.text((tile.x, tile.y + tile.height + 4 + i * LINE), line, fill=(230, 230, 230), font=font)
    path = out_dir / "contact-sheet.png"
    sheet.save(path, compress_level=3)
    return path


def _write_preview(source: Path, out_dir: Path, *, orient: bool = True) -> Path | None:
    image = colour_managed(source, PREVIEW, orient=orient)
    if image is None:
        return None
    suffix = ".png" if orient else ".stored.png"
    path = out_dir / "previews" / (_rel(source, out_dir).replace("/", "__") + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, icc_profile=None)
    return path


def colour_managed(path: Path, size: int, *, orient: bool = True) -> Image.Image | None:
    """The image as a colour-managed viewer shows it: EXIF orientation applied (unless ``orient`` is
    False: the pixels as stored), its profile converted to sRGB by littleCMS, fitted into ``size`` px
    (RGB, or RGBA where it has alpha); None if Pillow can't."""
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened) if orient else opened.copy()
            image.thumbnail((size, size))
            profile = image.info.get("icc_profile") or (
                builtin_profile("cmyk") if image.mode == "CMYK" else None
            )
            transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            alpha = image.convert("RGBA").getchannel("A") if transparent else None
            base = image.convert(
                {"L": "L", "LA": "L", "I;16": "L", "I": "L", "CMYK": "CMYK"}.get(image.mode, "RGB")
            )
            converted = _to_srgb(base, profile) if profile else base.convert("RGB")
            if alpha is not None:
                converted.putalpha(alpha)
            converted.info.pop("icc_profile", None)  # the pixels are sRGB now: untagged says so
            return converted
    except (OSError, ValueError, ImageCms.PyCMSError):
        return None


def _to_srgb(image: Image.Image, profile: bytes) -> Image.Image:
    try:
        out = ImageCms.profileToProfile(
            image,
            ImageCms.ImageCmsProfile(io.BytesIO(profile)),
            ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")),
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            outputMode="RGB",
            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
    except ImageCms.PyCMSError:  # a profile lcms refuses (corrupt, wrong colour space) is ignored
        return image.convert("RGB")
    return out if out is not None else image.convert("RGB")


def _tile(path: Path, box: int, *, orient: bool = True) -> Image.Image | None:
    """The image as a colour-managed viewer shows it, fitted into ``box`` px (never enlarged)."""
    image = colour_managed(path, box, orient=orient)
    if image is None:
        return None
    if image.mode == "RGBA":
        backdrop = Image.new("RGBA", image.size, (90, 90, 90, 255))
        return Image.alpha_composite(backdrop, image).convert("RGB")
    return image.convert("RGB")


def _rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def _url(path: Path, base: Path) -> str:
    """A relative URL for an attribute: percent-encoded (``#``, ``?``, ``%``, spaces, non-ASCII as UTF-8),
    then HTML-escaped for the quoted attribute."""
    return html.escape(quote(_rel(path, base)), quote=True)
