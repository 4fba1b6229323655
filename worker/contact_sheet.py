"""The demo's contact sheet: each source beside its thumbnails, as index.html and contact-sheet.png.

Sources are drawn colour-managed, independently of the imaging core: Pillow decodes them and littleCMS
(Pillow's ImageCms) converts their embedded profile (libvips' CMYK profile for untagged CMYK, as the core
does) to sRGB, relative colorimetric with black-point compensation. index.html shows those sRGB previews
(``previews/``, linked to the original), because browsers cannot show every upload (TIFF, HEIC) and differ
in what they colour-manage; a thumbnail whose colours are off is then visibly off beside its source.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms, ImageDraw, ImageFont, ImageOps

from worker.imaging import builtin_profile
from worker.imaging.heif import register_pillow_opener

CELL = 256
PAD = 12
LABEL = 40
PREVIEW = 512

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
        preview = _write_preview(row.source, out_dir)
        original = html.escape(_rel(row.source, out_dir))
        shown = html.escape(_rel(preview, out_dir)) if preview is not None else original
        cells = [f"<td><a href='{original}'><img src='{shown}'></a><br>source (sRGB preview)</td>"]
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


def _write_preview(source: Path, out_dir: Path) -> Path | None:
    image = colour_managed(source, PREVIEW)
    if image is None:
        return None
    path = out_dir / "previews" / (_rel(source, out_dir).replace("/", "__") + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, icc_profile=None)
    return path


def colour_managed(path: Path, size: int) -> Image.Image | None:
    """The image as a colour-managed viewer shows it: EXIF orientation applied, its profile converted to
    sRGB by littleCMS, fitted into ``size`` px (RGB, or RGBA where it has alpha); None if Pillow can't."""
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
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


def _tile(path: Path) -> Image.Image | None:
    """The image as a colour-managed viewer shows it, fitted into a cell; thumbnails are shown at their
    real size when they fit, so a wrong size is visible too."""
    image = colour_managed(path, CELL)
    if image is None:
        return None
    if image.mode == "RGBA":
        backdrop = Image.new("RGBA", image.size, (90, 90, 90, 255))
        return Image.alpha_composite(backdrop, image).convert("RGB")
    return image.convert("RGB")


def _rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()
