"""HEIC/HEIF input (worker/imaging/heif.py behind the core), checked against what the inputs were made from.

Inputs are encoded at test time with pillow-heif (its wheels carry the x265 encoder; a dev-only
dependency), so each test knows the upright picture a viewer must see; outputs are read back with Pillow.
"""

from __future__ import annotations

import io
import struct
import time

import pytest
import pyvips
from PIL import Image, ImageChops, ImageCms, ImageStat

from tests.heic import pillow_heif
from tests.unit.images import BLUE, GREEN, INVERSE, RED, WHITE, near, open_output, pixel, quadrants
from worker.core.errors import CorruptImage, ImageTooLarge, RenderTimeout, UnsupportedFormat
from worker.core.presets import parse_presets
from worker.imaging import Limits, heif, probe, render
from worker.imaging.guard import Deadline


def heic(image: Image.Image, *, bits: int = 8, quality: int = 90, **options: object) -> bytes:
    """``image`` as HEIC (lossless-ish at q=90, 4:4:4 so colour edges stay sharp)."""
    if bits > 8:
        pillow_heif.options.SAVE_HDR_TO_12_BIT = bits == 12
        mode = "RGBA;16" if image.mode == "RGBA" else "RGB;16"
        # 8-bit values spread over 16 bits: pillow-heif writes the top 10 or 12 of them
        wide = bytes(b for value in image.tobytes() for b in (value, value))
        heif_file = pillow_heif.from_bytes(mode, image.size, wide)
    else:
        heif_file = pillow_heif.from_pillow(image)
    out = io.BytesIO()
    try:
        heif_file.save(out, quality=quality, chroma=444, **options)
    finally:
        pillow_heif.options.SAVE_HDR_TO_12_BIT = False
    return out.getvalue()


def one(spec: str, data: bytes, limits: Limits | None = None) -> Image.Image:
    (rendition,) = render(data, parse_presets(spec), limits or Limits())
    image = open_output(rendition.data)
    assert image.size == (rendition.width, rendition.height)
    return image


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel (0-255)."""
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def gradient(width: int = 160, height: int = 120) -> Image.Image:
    """Smooth colour ramps: a picture where a wrong bit depth or colour conversion shows everywhere."""
    red = Image.linear_gradient("L").resize((width, height))
    green = red.transpose(Image.Transpose.ROTATE_90).resize((width, height))
    blue = Image.new("L", (width, height), 96)
    return Image.merge("RGB", (red, green, blue))


def assert_quadrants(image: Image.Image) -> None:
    image = image.convert("RGB")
    w, h = image.size
    assert near(image.getpixel((w // 8, h // 8)), RED)
    assert near(image.getpixel((w - w // 8, h // 8)), GREEN)
    assert near(image.getpixel((w // 8, h - h // 8)), BLUE)
    assert near(image.getpixel((w - w // 8, h - h // 8)), WHITE)


def test_a_heic_photo_renders_every_preset_from_one_decode() -> None:
    data = heic(quadrants(240, 160))
    header = probe(data)
    assert (header.format, header.loader, header.width, header.height) == ("heic", heif.LOADER, 240, 160)
    renditions = render(data, parse_presets("a:120:jpeg,b:60:webp,c:32x32:png:fit=cover"))
    assert [(r.width, r.height) for r in renditions] == [(120, 80), (60, 40), (32, 32)]
    for rendition in renditions[:2]:
        assert_quadrants(open_output(rendition.data))


@pytest.mark.parametrize("bits", [10, 12])
def test_ten_and_twelve_bit_heic_come_out_as_eight_bit_srgb_with_the_same_colours(bits: int) -> None:
    source = gradient()
    data = heic(source, bits=bits)
    assert pillow_heif.open_heif(data, convert_hdr_to_8bit=False).info["bit_depth"] == bits
    out = one("t:160:png", data)
    assert out.mode == "RGB"
    assert difference(out, source) < 2.5  # a wrong shift (10-bit read as 16) would be ~100 levels off


def test_alpha_is_kept_in_png_and_flattened_on_the_background_in_jpeg() -> None:
    source = quadrants(120, 80).convert("RGBA")
    source.paste((0, 0, 0, 0), (0, 0, 60, 40))  # top-left quarter fully transparent
    data = heic(source)
    png = one("t:120:png", data)
    assert png.mode == "RGBA"
    assert pixel(png, (15, 10))[3] == 0
    assert pixel(png, (100, 10))[3] == 255
    jpeg = one("t:120:jpeg:bg=ff00ff", data).convert("RGB")
    assert near(jpeg.getpixel((15, 10)), (255, 0, 255))
    assert near(jpeg.getpixel((100, 10)), GREEN)


def test_premultiplied_alpha_is_undone() -> None:
    premultiplied = bytes((100, 50, 25, 128))  # (200, 100, 50) at half coverage
    heif_file = pillow_heif.from_bytes("RGBa", (60, 40), premultiplied * (60 * 40))
    out = io.BytesIO()
    heif_file.save(out, quality=100, chroma=444)
    png = one("t:60:png", out.getvalue())
    red, green, blue, alpha = pixel(png, (30, 20))
    assert abs(alpha - 128) <= 1
    assert near((red, green, blue), (200, 100, 50), tolerance=6)


def test_a_file_with_several_images_shows_its_primary_one() -> None:
    first, primary = quadrants(120, 80), Image.new("RGB", (90, 90), (20, 200, 40))
    heif_file = pillow_heif.from_pillow(first)
    heif_file.add_from_pillow(primary)
    out = io.BytesIO()
    heif_file.save(out, quality=90, primary_index=1)
    data = out.getvalue()
    assert probe(data).width == 90
    image = one("t:60:jpeg", data).convert("RGB")
    assert image.size == (60, 60)
    assert near(image.getpixel((30, 30)), (20, 200, 40))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_irot_imir_and_the_exif_orientation_are_applied_exactly_once(orientation: int) -> None:
    # As phones write them: the pixels stored turned, an irot/imir transform saying how to show them, and
    # an EXIF Orientation tag describing the same turn. Applying both would turn the picture twice.
    upright = quadrants(120, 80)
    stored = upright.transpose(INVERSE[orientation]) if orientation in INVERSE else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = heic(stored, exif=exif.tobytes())
    if orientation != 1:
        assert b"irot" in data or b"imir" in data
    assert probe(data).upright == (120, 80)
    image = one("t:120:jpeg:q=95", data)
    assert image.size == (120, 80)
    assert_quadrants(image)
    assert 0x0112 not in image.getexif()


def _display_p3() -> bytes:
    return bytes(pyvips.Operation.call("profile_load", "p3"))


def test_an_embedded_icc_profile_is_handed_to_the_colour_conversion() -> None:
    p3 = _display_p3()
    data = heic(gradient(), icc_profile=p3)
    image = heif.load(data)
    assert image.get("icc-profile-data") == p3  # the core converts it to sRGB (see worker/imaging/core.py)


def test_display_p3_pixels_come_out_as_the_srgb_colours_they_show() -> None:
    source = gradient()
    to_p3 = ImageCms.buildTransform(
        ImageCms.createProfile("sRGB"), ImageCms.ImageCmsProfile(io.BytesIO(_display_p3())), "RGB", "RGB"
    )
    p3_pixels = ImageCms.applyTransform(source, to_p3)
    assert p3_pixels is not None
    out = one("t:160:png", heic(p3_pixels, icc_profile=_display_p3()))
    naive = difference(p3_pixels, source)  # what a reader that ignores the profile shows
    assert naive > 4
    assert difference(out, source) < naive / 2


def test_nclx_display_p3_is_tagged_and_srgb_code_points_are_left_alone() -> None:
    p3 = heic(gradient(), color_primaries=12, transfer_characteristic=13, matrix_coefficients=6)
    assert heif.load(p3).get("icc-profile-data") == _display_p3()
    srgb = heic(gradient(), color_primaries=1, transfer_characteristic=13, matrix_coefficients=6)
    assert heif.load(srgb).get_typeof("icc-profile-data") == 0


def test_keep_copyright_keeps_the_heic_copyright_line_and_nothing_else() -> None:
    exif = Image.Exif()
    exif[0x8298] = "(c) Example Photographer"
    exif[0x010F] = "Phone maker"
    data = heic(quadrants(), exif=exif.tobytes())
    kept = one("t:60:jpeg:keep=copyright", data).getexif()
    assert kept[0x8298] == "(c) Example Photographer"
    assert 0x010F not in kept
    assert dict(one("t:60:jpeg", data).getexif()) == {}


def test_heic_is_refused_unread_when_the_allow_list_leaves_it_out(monkeypatch: pytest.MonkeyPatch) -> None:
    data = heic(quadrants())

    def never(_data: bytes) -> None:
        raise AssertionError("pi-heif opened a file the allow-list refuses")

    monkeypatch.setattr(heif, "dimensions", never)
    monkeypatch.setattr(heif, "load", never)
    with pytest.raises(UnsupportedFormat, match="heic input is not accepted"):
        render(data, parse_presets("t:60:jpeg"), Limits(formats=frozenset({"jpeg", "avif"})))


def _lying(data: bytes, width: int, height: int) -> bytes:
    """``data`` with every ``ispe`` box (the image's stored size) claiming ``width`` x ``height``."""
    out = bytearray(data)
    at = out.find(b"ispe")
    while at != -1:
        out[at + 8 : at + 16] = struct.pack(">II", width, height)  # after type (4) and version/flags (4)
        at = out.find(b"ispe", at + 4)
    return bytes(out)


def test_pixel_limits_are_checked_from_the_heic_header_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(_data: bytes) -> None:
        raise AssertionError("decoded an image the header already refuses")

    monkeypatch.setattr(heif, "load", never)
    bomb = _lying(heic(quadrants()), 12000, 9000)  # 108 MP claimed by a file of a few hundred bytes
    with pytest.raises(ImageTooLarge, match="12000x9000"):
        render(bomb, parse_presets("t:60:jpeg"))
    with pytest.raises(ImageTooLarge, match="MP"):
        render(heic(quadrants(240, 160)), parse_presets("t:60:jpeg"), Limits(max_pixels=240 * 159))
    with pytest.raises(ImageTooLarge, match="memory budget"):
        render(heic(quadrants()), parse_presets("t:60:jpeg"), Limits(memory_budget_bytes=2**20))


def test_truncated_corrupt_and_empty_heic_are_typed_refusals() -> None:
    data = heic(gradient(400, 300), quality=95)
    for cut in (16, 64, len(data) // 3, len(data) - 100):  # in the header, the boxes, the coded data
        with pytest.raises(CorruptImage):
            render(data[:cut], parse_presets("t:60:jpeg"))
    with pytest.raises(CorruptImage, match="empty"):
        render(b"", parse_presets("t:60:jpeg"))
    with pytest.raises(CorruptImage):
        heif.load(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")  # a HEIC header and nothing else


def test_the_time_limit_applies_right_after_the_heic_decode() -> None:
    data = heic(gradient(1600, 1200), quality=50)
    with pytest.raises(RenderTimeout):
        render(data, parse_presets("t:60:jpeg"), Limits(timeout_seconds=0.001))
    assert render(data, parse_presets("t:60:jpeg"), Limits(timeout_seconds=30))


def test_an_image_made_after_the_deadline_is_stopped_at_its_first_libvips_step() -> None:
    # libheif's decode cannot be interrupted: what it returns after the deadline must not be worked on
    with Deadline(0.001) as deadline:
        time.sleep(0.05)  # past the deadline, as a long HEIC decode would be
        late = deadline.watch(pyvips.Image.black(64, 64))
        with pytest.raises(pyvips.Error):
            late.avg()
    assert deadline.killed
