"""The demo's contact sheet: each source beside its thumbnails, as index.html and contact-sheet.png."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from worker.imaging.heif import register_pillow_opener

CELL = 256
PAD = 12
LABEL = 40
BROWSER_UNREADABLE = (".heic", ".heif")  # shown in index.html through a PNG preview (only Safari reads HEIC)

register_pillow_opener()  # Pillow reads HEIC sources for the sheet (libheif applies irot/imir)


@dataclass(frozen=True)
class SheetRow:
    source: Path
    thumbnails: Sequence[Path]
    caption: str


def write_contact_sheet(rows: Sequence[SheetRow], out_dir: Path) -> tuple[Path, Path]:
    return _write_html(rows, out_dir), _write_png(rows, out_dir)


def _write_html(rows: Sequence[SheetRow], out_dir: Path) -> Path:
    lines = [
        "<!doctype html><meta charset=utf-8><title>thumbx contact sheet</title>",
        "<style>body{font-family:sans-serif;background:#222;color:#eee}td{padding:8px;vertical-align:top}"
        "img{max-width:256px;max-height:256px;"
        "background:repeating-conic-gradient(#555 0 25%,#777 0 50%) 0/16px 16px}"
        "</style>",
        "<h1>thumbx contact sheet</h1><table>",
    ]
    for row in rows:
        source = _browser_copy(row.source)
        cells = [f"<td><img src='{html.escape(_rel(source, out_dir))}'><br>source</td>"]
        cells += [
            f"<td><img src='{html.escape(_rel(t, out_dir))}'><br>{html.escape(t.name)}</td>"
            for t in row.thumbnails
        ]
        lines.append(f"<tr><td>{html.escape(row.caption)}</td>{''.join(cells)}</tr>")
    lines.append("</table>")
    path = out_dir / "index.html"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _write_png(rows: Sequence[SheetRow], out_dir: Path) -> Path:
    columns = 1 + max((len(r.thumbnails) for r in rows), default=0)
    width = PAD + columns * (CELL + PAD)
    height = PAD + max(1, len(rows)) * (CELL + LABEL + PAD)
    sheet = Image.new("RGB", (width, height), (34, 34, 34))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    for r, row in enumerate(rows):
        y = PAD + r * (CELL + LABEL + PAD)
        tiles = [(row.source, "source: " + row.caption)] + [(t, t.name) for t in row.thumbnails]
        for c, (path, label) in enumerate(tiles):
            x = PAD + c * (CELL + PAD)
            tile = _tile(path)
            if tile is not None:
                sheet.paste(tile, (x + (CELL - tile.width) // 2, y + (CELL - tile.height) // 2))
            else:
                draw.rectangle([x, y, x + CELL, y + CELL], outline=(200, 60, 60))
            draw.text((x, y + CELL + 4), label[:40], fill=(230, 230, 230), font=font)
    path = out_dir / "contact-sheet.png"
    sheet.save(path)
    return path


def _tile(path: Path) -> Image.Image | None:
    """The image as a viewer shows it (EXIF orientation applied), fitted into a cell; thumbnails are
    shown at their real size when they fit, so a wrong size is visible too."""
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((CELL, CELL))
            if image.mode in ("RGBA", "LA", "P"):
                image = image.convert("RGBA")
                backdrop = Image.new("RGBA", image.size, (90, 90, 90, 255))
                return Image.alpha_composite(backdrop, image).convert("RGB")
            return image.convert("RGB")
    except OSError:
        return None


def _browser_copy(source: Path) -> Path:
    """The source itself, or for a format browsers cannot show, a PNG preview written beside it."""
    if source.suffix.lower() not in BROWSER_UNREADABLE:
        return source
    preview = source.with_name(source.name + ".png")
    try:
        with Image.open(source) as opened:
            image = ImageOps.exif_transpose(opened)
            image.thumbnail((CELL * 2, CELL * 2))
            image.save(preview)
    except OSError:
        return source
    return preview


def _rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()
