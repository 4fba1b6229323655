"""The imaging core, checked with Pillow as an independent reader of what it writes."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import pyvips
from PIL import Image

from tests.unit.images import (
    BLUE,
    GREEN,
    RED,
    WHITE,
    encode,
    lying_png,
    near,
    open_output,
    oriented_jpeg,
    quadrants,
)
from worker.core.errors import CorruptImage, ImageTooLarge, RenderTimeout, UnsupportedFormat
from worker.core.presets import parse_presets
from worker.imaging import Limits, core, probe, render
from worker.imaging.guard import Deadline, MemoryBudget
from worker.imaging.markers import jpeg_is_progressive


def one(spec: str, data: bytes, limits: Limits | None = None) -> Image.Image:
    (rendition,) = render(data, parse_presets(spec), limits or Limits())
    image = open_output(rendition.data)
    assert image.size == (rendition.width, rendition.height)
    return image


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright_and_untagged(orientation: int) -> None:
    image = one("t:60:jpeg:q=95", oriented_jpeg(orientation)).convert("RGB")
    assert image.size == (60, 40)
    assert near(image.getpixel((8, 8)), RED)
    assert near(image.getpixel((52, 8)), GREEN)
    assert near(image.getpixel((8, 32)), BLUE)
    assert near(image.getpixel((52, 32)), WHITE)
    assert 0x0112 not in image.getexif()


def test_metadata_is_stripped_by_default() -> None:
    for spec in ("t:60:jpeg", "t:60:webp", "t:60:png"):
        image = one(spec, oriented_jpeg(6))
        assert dict(image.getexif()) == {}, spec
        assert "icc_profile" not in image.info, spec
        assert "exif" not in image.info, spec


def test_keep_copyright_keeps_only_the_copyright_line() -> None:
    image = one("t:60:jpeg:keep=copyright", oriented_jpeg(6))
    exif = image.getexif()
    assert exif[0x8298] == "(c) Example Photographer"
    assert exif.get_ifd(0x8825) == {}  # no GPS
    assert 0x0112 not in exif or exif[0x0112] == 1


def test_keep_icc_embeds_the_srgb_profile_of_the_output() -> None:
    source = quadrants()
    data = encode(source, "JPEG", icc_profile=_srgb_icc())
    assert "icc_profile" in one("t:60:jpeg:keep=icc", data).info
    assert "icc_profile" not in one("t:60:jpeg", data).info


def _srgb_icc() -> bytes:
    from PIL import ImageCms

    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def test_cmyk_jpeg_comes_out_rgb_with_the_right_colours() -> None:
    red_cmyk = Image.new("CMYK", (64, 64), (0, 255, 255, 0))
    image = one("t:64:jpeg", encode(red_cmyk, "JPEG", quality=95))
    assert image.mode == "RGB"
    r, g, b = image.convert("RGB").getpixel((32, 32))  # type: ignore[misc]
    assert r > 180
    assert g < 90
    assert b < 90


def test_sixteen_bit_and_greyscale_inputs_become_eight_bit() -> None:
    grey16 = Image.new("I;16", (40, 30), 40000)
    image = one("t:40:png", encode(grey16, "PNG"))
    assert image.mode in ("L", "LA")
    value = image.getpixel((5, 5))
    assert abs((value if isinstance(value, int) else value[0]) - 40000 // 257) <= 2  # type: ignore[index]
    grey = one("t:40:jpeg", encode(Image.new("L", (40, 30), 200), "JPEG"))
    assert grey.mode == "L"


def test_alpha_is_kept_where_the_format_has_it_and_flattened_elsewhere() -> None:
    transparent = Image.new("RGBA", (40, 40), (0, 0, 255, 0))
    transparent.paste((0, 255, 0, 255), (0, 0, 20, 40))
    data = encode(transparent, "PNG")
    kept = one("t:40:webp:q=100", data)
    assert kept.mode == "RGBA"
    assert kept.getpixel((30, 20))[3] == 0  # type: ignore[index]
    jpeg = one("t:40:jpeg:bg=ff0000", data).convert("RGB")
    assert near(jpeg.getpixel((30, 20)), RED)
    assert near(jpeg.getpixel((8, 20)), GREEN)
    flat = one("t:40:png:alpha=flatten", data)
    assert flat.mode == "RGB"
    assert near(flat.getpixel((30, 20)), WHITE, 2)


def test_animated_gif_first_frame_by_default_all_frames_on_request() -> None:
    frames = [Image.new("RGB", (50, 40), colour) for colour in (RED, GREEN, BLUE)]
    buffer = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    still = one("t:25:webp", buffer)
    assert getattr(still, "n_frames", 1) == 1
    moving = one("t:25:webp:anim=1", buffer)
    assert moving.n_frames == 3  # type: ignore[attr-defined]
    assert moving.size == (25, 20)
    with pytest.raises(ImageTooLarge, match="frames"):
        render(buffer, parse_presets("t:25:webp:anim=1"), Limits(max_frames=2))
    with pytest.raises(ImageTooLarge, match="MP"):
        render(buffer, parse_presets("t:25:webp:anim=1"), Limits(max_pixels=50 * 40 * 2))
    render(buffer, parse_presets("t:25:webp"), Limits(max_pixels=50 * 40 * 2))  # 1 frame: within limits


def test_cover_fills_the_box_exactly_and_inside_keeps_the_aspect() -> None:
    data = encode(quadrants(300, 100), "PNG")
    for crop in ("attention", "entropy", "centre"):
        assert one(f"t:64x64:webp:fit=cover:crop={crop}", data).size == (64, 64)
    assert one("t:64x64:webp", data).size == (64, 21)


def test_one_decode_serves_presets_of_every_format_and_fit() -> None:
    presets = parse_presets("a:200:jpeg,b:100:webp,c:50x50:png:fit=cover,d:80:avif")
    renditions = render(encode(quadrants(400, 300), "JPEG"), presets)
    assert [(r.width, r.height) for r in renditions] == [(200, 150), (100, 75), (50, 50), (80, 60)]
    formats = [open_output(r.data).format for r in renditions]
    assert formats == ["JPEG", "WEBP", "PNG", "AVIF"]
    assert [r.content_type for r in renditions] == ["image/jpeg", "image/webp", "image/png", "image/avif"]


def test_output_is_byte_identical_on_re_run() -> None:
    presets = parse_presets("a:200:jpeg,b:100:webp,c:50x50:png:fit=cover,d:80:avif")
    data = oriented_jpeg(7, width=400, height=300)
    first = [r.data for r in render(data, presets)]
    assert [r.data for r in render(data, presets)] == first


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
        b"BM" + b"\0" * 100,
        b"\x00\x01\x02 not an image at all",
    ],
    ids=["svg", "pdf", "bmp", "garbage"],
)
def test_formats_outside_the_allow_list_are_refused_unread(data: bytes) -> None:
    with pytest.raises(UnsupportedFormat):
        render(data, parse_presets("t:32:jpeg"))


def test_the_allow_list_comes_from_limits() -> None:
    png = encode(quadrants(), "PNG")
    with pytest.raises(UnsupportedFormat, match="png input is not accepted"):
        render(png, parse_presets("t:32:jpeg"), Limits(formats=frozenset({"jpeg"})))


def test_truncated_and_empty_input_is_corrupt_not_a_grey_block() -> None:
    data = encode(Image.effect_noise((400, 300), 60).convert("RGB"), "JPEG", quality=90)
    with pytest.raises(CorruptImage):
        render(data[: len(data) // 2], parse_presets("t:200:jpeg"))
    with pytest.raises(CorruptImage):
        render(b"", parse_presets("t:200:jpeg"))
    png = encode(Image.effect_noise((400, 300), 60).convert("RGB"), "PNG")
    with pytest.raises(CorruptImage):
        render(png[: len(png) * 2 // 3], parse_presets("t:200:jpeg"))


def test_size_limits_are_checked_from_the_header_before_decoding() -> None:
    bomb = lying_png(60_000, 60_000)
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge, match=r"3600\.0 MP"):
        render(bomb, parse_presets("t:200:jpeg"))
    assert time.perf_counter() - started < 2  # nothing was decoded (3.6 GP would take minutes)
    with pytest.raises(ImageTooLarge, match="bytes"):
        render(encode(quadrants(), "PNG"), parse_presets("t:32:jpeg"), Limits(max_bytes=100))


def test_progressive_jpegs_are_recognised_and_capped() -> None:
    image = quadrants(200, 100)
    progressive = encode(image, "JPEG", progressive=True)
    baseline = encode(image, "JPEG")
    assert jpeg_is_progressive(progressive)
    assert not jpeg_is_progressive(baseline)
    assert probe(progressive).progressive
    limits = Limits(max_progressive_pixels=10_000)
    with pytest.raises(ImageTooLarge, match="progressive"):
        render(progressive, parse_presets("t:50:jpeg"), limits)
    assert render(baseline, parse_presets("t:50:jpeg"), limits)[0].width == 50


def test_memory_budget_refuses_what_can_never_fit_and_queues_the_rest() -> None:
    budget = MemoryBudget(100)
    with pytest.raises(ImageTooLarge, match="budget"), budget.hold(150):
        pass
    order: list[str] = []
    first_in = threading.Event()
    release = threading.Event()

    def first() -> None:
        with budget.hold(60):
            order.append("first in")
            first_in.set()
            release.wait(5)
        order.append("first out")

    def second() -> None:
        first_in.wait(5)
        with budget.hold(60):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_in.wait(5)
    time.sleep(0.05)
    assert order == ["first in"]  # the second waits: 60 + 60 > 100
    release.set()
    for thread in threads:
        thread.join(5)
    assert order == ["first in", "first out", "second in"]
    assert budget.in_use == 0


def test_an_image_over_the_memory_budget_is_refused() -> None:
    with pytest.raises(ImageTooLarge, match="MiB"):
        render(encode(quadrants(), "PNG"), parse_presets("t:32:jpeg"), Limits(memory_budget_bytes=1024))


@pytest.fixture(scope="module")
def slow_png() -> bytes:
    """4 MP of noise as PNG: no shrink-on-load, so libvips decodes every row of it."""
    return encode(Image.effect_noise((2000, 2000), 80).convert("RGB"), "PNG", compress_level=1)


def test_time_limit_stops_libvips_mid_decode(slow_png: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    deadlines: list[Deadline] = []

    class ExpiresOnceDecoding(Deadline):
        """The time limit passes the moment libvips is handed the decoder's image: no timing involved."""

        def __init__(self, seconds: float) -> None:
            super().__init__(seconds)
            deadlines.append(self)

        def watch(self, image: Any) -> Any:
            self.expire()
            return super().watch(image)

    monkeypatch.setattr(core, "Deadline", ExpiresOnceDecoding)
    with pytest.raises(RenderTimeout, match="time limit") as stopped:
        render(slow_png, parse_presets("t:256:jpeg"), Limits(timeout_seconds=60))
    # libvips itself gave up on the decode (its work failed as killed) instead of finishing in vain and
    # being refused afterwards
    assert isinstance(stopped.value.__cause__, pyvips.Error), stopped.value
    assert "killed" in str(stopped.value.__cause__)
    assert [d.killed for d in deadlines] == [True]
