"""Sample uploads for ``thumbx demo``, drawn on the fly so the demo needs no files from anywhere.

Each picture has an unmistakable "up" (sky above ground, an arrow and a label), and most are *stored*
sideways or mirrored with an EXIF Orientation tag saying how to show them: a thumbnail that comes out
sideways is visibly wrong on the contact sheet. The one exception to "drawn on the fly" is the HEIC
sample: the runtime can only decode HEIC, so it ships as package data (``sample_data/phone.heic``, the
same scene, made by ``tools/make_heic_sample.py``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib.resources import files

from PIL import Image, ImageCms, ImageDraw, ImageFont

from worker.imaging import builtin_profile, has_builtin_profile

# EXIF Orientation -> the transpose that turns an upright picture into what a camera would have stored.
_STORE_AS = {
    1: None,
    3: Image.Transpose.ROTATE_180,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    note: str


def upright_scene(width: int, height: int, label: str, *, alpha: bool = False) -> Image.Image:
    mode = "RGBA" if alpha else "RGB"
    image = Image.new(mode, (width, height), (0, 0, 0, 0) if alpha else (0, 0, 0))
    draw = ImageDraw.Draw(image)
    horizon = int(height * 0.62)
    for y in range(horizon):  # sky: light at the horizon, deep blue on top
        shade = int(90 + 140 * y / max(1, horizon))
        draw.line([(0, y), (width, y)], fill=(shade // 3, shade // 2 + 40, 235, 255))
    draw.rectangle([0, horizon, width, height], fill=(46, 139, 62, 255))
    draw.ellipse([width * 0.72, height * 0.08, width * 0.9, height * 0.08 + width * 0.18], fill=(255, 214, 0))
    cx, top, bottom = width // 2, int(height * 0.12), int(height * 0.78)
    shaft = max(8, width // 30)
    draw.rectangle([cx - shaft, top + height // 6, cx + shaft, bottom], fill=(200, 30, 40, 255))
    draw.polygon(
        [(cx, top), (cx - width // 9, top + height // 5), (cx + width // 9, top + height // 5)],
        fill=(200, 30, 40, 255),
    )
    font = ImageFont.load_default(size=max(18, height // 12))
    draw.text((width * 0.05, height * 0.84), f"UP  {label}", fill=(255, 255, 255, 255), font=font)
    if alpha:  # cut a transparent frame so flattening and alpha handling show
        mask = Image.new("L", (width, height), 0)
        ImageDraw.Draw(mask).rounded_rectangle(
            [width * 0.06, height * 0.06, width * 0.94, height * 0.94], radius=width // 10, fill=255
        )
        image.putalpha(mask)
    return image


def _display_p3(image: Image.Image) -> Image.Image:
    """The picture's colours as a phone stores them in Display P3 (lcms, relative colorimetric)."""
    converted = ImageCms.profileToProfile(
        image,
        ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")),
        ImageCms.ImageCmsProfile(io.BytesIO(builtin_profile("p3"))),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        outputMode="RGB",
    )
    assert converted is not None
    return converted


def _display_p3_sample() -> list[Sample]:
    if not has_builtin_profile("p3"):  # a libvips build without its Display P3 profile
        return []
    picture = _display_p3(upright_scene(1200, 1600, "Display P3"))
    return [
        Sample(
            "display p3 phone.jpg",
            _jpeg(picture, 6, icc_profile=builtin_profile("p3")),
            "Display P3 profile (as phones write): thumbnails converted to sRGB",
        )
    ]


def _jpeg(
    image: Image.Image, orientation: int, *, cmyk: bool = False, icc_profile: bytes | None = None
) -> bytes:
    transpose = _STORE_AS[orientation]
    stored = image.transpose(transpose) if transpose is not None else image
    if cmyk:
        stored = stored.convert("CMYK")
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "thumbx demo camera"  # Make: metadata that must not survive into thumbnails
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=90, exif=exif.tobytes(), icc_profile=icc_profile)
    return out.getvalue()


def demo_samples() -> list[Sample]:
    """A handful of small uploads covering the cases users hit first."""
    png = io.BytesIO()
    upright_scene(900, 900, "PNG alpha", alpha=True).save(png, "PNG")
    return [
        Sample("landscape.jpg", _jpeg(upright_scene(2400, 1600, "orientation 1"), 1), "plain landscape"),
        Sample(
            "phone portrait.jpg",
            _jpeg(upright_scene(1200, 1800, "orientation 6"), 6),
            "stored sideways (EXIF 6), a space in the name",
        ),
        Sample(
            "rotated+left.jpg",
            _jpeg(upright_scene(1600, 1200, "orientation 8"), 8),
            "EXIF 8, a '+' in the name",
        ),
        Sample(
            "mirrored.jpg",
            _jpeg(upright_scene(1200, 1600, "orientation 5"), 5),
            "mirrored + rotated (EXIF 5)",
        ),
        Sample(
            "upside down.jpg", _jpeg(upright_scene(1500, 1000, "orientation 3"), 3), "stored upside down (3)"
        ),
        *_display_p3_sample(),
        Sample(
            "phone photo.heic",
            files("worker").joinpath("sample_data/phone.heic").read_bytes(),
            "HEIC as an iPhone stores a portrait: irot 270 plus EXIF 6 (applied once)",
        ),
        Sample("logo.png", png.getvalue(), "PNG with transparency"),
        Sample("not-an-image.jpg", b"%PDF-1.4 this is not a JPEG\n", "a PDF named .jpg: refused, not lost"),
    ]
