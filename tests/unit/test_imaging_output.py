"""What the speed work on the core (issue 14) must not change: the pixels and the metadata of the outputs.

* Output quality: every rendition of the camera photos (the shared corpus when it is beside the checkout,
  generated camera-like photos always) is compared with a reference render made here from libvips
  primitives, the way the core rendered on 2026-12-03 (DCT-scale shrink-on-load, lanczos3
  ``thumbnail_image`` to the box, relative colorimetric + BPC from an embedded profile after the resize,
  the cascade 1024 -> 512 -> 128, JPEG q=80 with optimised Huffman tables). A different kernel, shrink
  choice, intent, quality or chroma subsampling shows up as a mean absolute difference or an SSIM drop.
* ``huffman=standard`` changes the entropy coding only: the same pixels as the default, more bytes.
* Metadata: a preset that keeps nothing writes none, in every output format (the core relies on the
  encoder's ``keep=0`` for that instead of removing items one by one).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pytest
import pyvips
from PIL import Image, ImageCms

from tests.support import shared_dir
from worker.core.presets import parse_presets
from worker.imaging import Limits, colour, render

SIZES = (1024, 512, 128)
PRESETS = parse_presets(",".join(f"s{s}:{s}:jpeg:q=80" for s in SIZES))
LIMITS = Limits(max_pixels=200_000_000, max_progressive_pixels=200_000_000, memory_budget_bytes=2**34)
MAX_MEAN_ABS_DIFF = 0.35  # levels of 0-255, per channel, over the whole rendition
MIN_SSIM = 0.995  # on the luminance


def _shrink(width: int, height: int, box: tuple[int, int]) -> int:
    factor = min(width / box[0], height / box[1])
    return next((s for s in (8, 4, 2) if factor >= s), 1)


def reference_render(data: bytes) -> list[pyvips.Image]:
    """The 2026-12-03 render of an RGB or greyscale JPEG photo, from libvips primitives."""
    head = pyvips.Image.new_from_buffer(data, "")
    orientation = head.get("orientation") if head.get_typeof("orientation") else 1
    width, height = (head.height, head.width) if orientation in (5, 6, 7, 8) else (head.width, head.height)
    scale = min(SIZES[0] / width, SIZES[0] / height, 1.0)
    box = (max(1, math.ceil(width * scale - 1e-9)), max(1, math.ceil(height * scale - 1e-9)))
    image = pyvips.Image.new_from_buffer(
        data, "", access="sequential", fail_on="none", shrink=_shrink(width, height, box)
    )
    # colour.plan decides only whether the embedded profile is sRGB already (then nothing is converted)
    converts = colour.plan(image) is not None
    profile = bytes(image.get("icc-profile-data")) if image.get_typeof("icc-profile-data") else None
    if profile is not None:
        image = image.copy()
        image.remove("icc-profile-data")
    image = image.thumbnail_image(box[0], height=box[1], size="down")
    if profile is not None and converts:
        tagged = image.copy()
        tagged.set_type(pyvips.GValue.blob_type, "icc-profile-data", profile)
        try:
            image = tagged.icc_transform(
                "srgb", embedded=True, intent="relative", black_point_compensation=True, depth=8
            ).copy_memory()
        except pyvips.Error:  # a profile lcms cannot use is ignored, as libvips itself does
            pyvips.vips_lib.vips_error_clear()
    if image.interpretation == "b-w" and image.bands == 3:
        image = image.colourspace("b-w")
    if image.get_typeof("icc-profile-data"):  # the cascade resizes sRGB values, no colour round trip
        image = image.copy()
        image.remove("icc-profile-data")
    outputs, sources = [], [image.copy_memory()]
    for size in SIZES:  # each size from the smallest image made so far that is at least as large
        s = min(size / width, size / height, 1.0)
        target = (max(1, min(size, round(width * s))), max(1, min(size, round(height * s))))
        fitting = [im for im in sources if im.width >= target[0] and im.height >= target[1]] or sources[:1]
        source = min(fitting, key=lambda im: im.width * im.height)
        if (source.width, source.height) != target:
            source = source.thumbnail_image(target[0], height=target[1], size="force").copy_memory()
            sources.append(source)
        out = source.jpegsave_buffer(Q=80, optimize_coding=True, keep=0)
        outputs.append(pyvips.Image.new_from_buffer(out, "").copy_memory())
    return outputs


def mean_abs_diff(a: pyvips.Image, b: pyvips.Image) -> float:
    return float((a.cast("float") - b.cast("float")).abs().avg())


def ssim(a: pyvips.Image, b: pyvips.Image) -> float:
    """Mean SSIM of the luminance (Gaussian window, sigma 1.5; the constants of Wang et al. 2004)."""
    x, y = (
        im.colourspace("b-w")[0].cast("double") if im.bands >= 3 else im[0].cast("double") for im in (a, b)
    )

    def blur(im: pyvips.Image) -> pyvips.Image:
        return im.gaussblur(1.5, precision="float")

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    index = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(index.avg())


def generated_photo(seed: int, orientation: int) -> bytes:
    """A textured camera-like JPEG (3000x2000 stored, noise and gradients), stored rotated when tagged."""
    width, height = 3000, 2000
    grain = [pyvips.Image.gaussnoise(width, height, sigma=30, mean=0, seed=seed + band) for band in range(3)]
    ramp = pyvips.Image.xyz(width, height)
    bands = [
        ramp[0] * (200 / width) + grain[0].gaussblur(1.2),
        ramp[1] * (200 / height) + grain[1].gaussblur(0.8),
        (ramp[0] + ramp[1]) * (100 / (width + height)) + 60 + grain[2].gaussblur(2.0),
    ]
    image = bands[0].bandjoin(bands[1:]).cast("uchar").copy(interpretation="srgb")
    stored = {1: image, 3: image.rot180(), 6: image.rot270(), 8: image.rot90()}[orientation]
    stored = stored.copy()
    stored.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return bytes(stored.jpegsave_buffer(Q=90))


def corpus_photos() -> list[Path]:
    shared = shared_dir()
    folder = shared / "corpus" / "photos" / "jpeg" if shared else None
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))


def _colour_photo(data: bytes) -> bool:
    return str(pyvips.Image.new_from_buffer(data, "").interpretation) in ("srgb", "b-w")


PHOTOS: list[Any] = [
    pytest.param(lambda s=seed, o=orientation: generated_photo(s, o), id=f"generated-{seed}-o{orientation}")
    for seed, orientation in ((1, 1), (7, 6), (13, 8), (19, 3))
] + [pytest.param(lambda p=path: p.read_bytes(), id=path.name) for path in corpus_photos()]


@pytest.mark.parametrize("load", PHOTOS)
def test_every_rendition_matches_the_reference_render(load: Any) -> None:
    data = load()
    if not _colour_photo(data):
        pytest.skip("CMYK: the reference render covers RGB and greyscale photos")
    made = render(data, PRESETS, LIMITS)
    for rendition, expected in zip(made, reference_render(data), strict=True):
        got = pyvips.Image.new_from_buffer(rendition.data, "")
        assert (got.width, got.height) == (expected.width, expected.height), rendition.preset.name
        assert got.bands == expected.bands, rendition.preset.name
        assert mean_abs_diff(got, expected) <= MAX_MEAN_ABS_DIFF, rendition.preset.name
        assert ssim(got, expected) >= MIN_SSIM, rendition.preset.name


def test_the_comparison_notices_a_different_kernel() -> None:
    """The thresholds are tight enough to catch bicubic instead of lanczos3 on the 128-px cascade step."""
    data = generated_photo(3, 1)
    expected = reference_render(data)[2]
    base = pyvips.Image.new_from_buffer(data, "", shrink=2)
    cubic = base.resize(expected.width / base.width, vscale=expected.height / base.height, kernel="cubic")
    other = pyvips.Image.new_from_buffer(cubic.jpegsave_buffer(Q=80, keep=0), "")
    assert mean_abs_diff(other, expected) > MAX_MEAN_ABS_DIFF or ssim(other, expected) < MIN_SSIM


def _rich_source() -> bytes:
    """A JPEG carrying EXIF (orientation, GPS, copyright), XMP, an ICC profile and a comment."""
    image = Image.new("RGB", (320, 240), (200, 120, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8298] = "(c) Example Photographer"
    exif.get_ifd(0x8825)[1] = "N"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), xmp=xmp, icc_profile=srgb, comment=b"a comment")
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png", "avif"])
def test_a_preset_that_keeps_nothing_writes_no_metadata(fmt: str) -> None:
    source = _rich_source()
    assert {"exif-data", "xmp-data", "icc-profile-data"} <= set(
        pyvips.Image.new_from_buffer(source, "").get_fields()
    )
    (rendition,) = render(source, parse_presets(f"t:100:{fmt}"), Limits())
    out = pyvips.Image.new_from_buffer(rendition.data, "")
    kept = [
        name
        for name in out.get_fields()
        if name.startswith(
            ("exif-", "xmp-", "iptc-", "png-comment", "jpeg-comment", "gainmap", "orientation")
        )
        or name in ("icc-profile-data", "exif-data", "xmp-data")
    ]
    assert kept == []
    for marker in (b"Exif", b"ns.adobe.com/xap", b"adobe:ns:meta", b"Example Photographer", b"a comment"):
        assert marker not in rendition.data, marker


@pytest.mark.parametrize("seed", [2, 5])
def test_standard_huffman_tables_give_the_same_pixels_in_more_bytes(seed: int) -> None:
    data = generated_photo(seed, 6)
    optimal = render(data, parse_presets("a:512:jpeg"), LIMITS)[0].data
    standard = render(data, parse_presets("a:512:jpeg:huffman=standard"), LIMITS)[0].data
    x, y = (pyvips.Image.new_from_buffer(b, "") for b in (optimal, standard))
    assert (x.width, x.height) == (y.width, y.height) == (512, 341)
    assert mean_abs_diff(x, y) == 0.0
    assert len(standard) > len(optimal)  # ~2% on camera photos (make bench-peers corpus), more on smooth ones
    assert _huffman_tables(standard) != _huffman_tables(optimal)


def _huffman_tables(jpeg: bytes) -> list[bytes]:
    """The DHT segments of a JPEG (the entropy-coding tables), in file order."""
    tables, i = [], 2
    while i + 4 <= len(jpeg) and jpeg[i] == 0xFF and jpeg[i + 1] != 0xDA:
        length = int.from_bytes(jpeg[i + 2 : i + 4], "big")
        if jpeg[i + 1] == 0xC4:
            tables.append(jpeg[i + 4 : i + 2 + length])
        i += 2 + length
    return tables
