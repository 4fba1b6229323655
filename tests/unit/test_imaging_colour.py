"""Colour management: every thumbnail against littleCMS's own conversion of its source."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import pytest
import pyvips
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from tests import colour_corpus as cc
from worker.core.presets import parse_presets
from worker.demo.contact_sheet import SheetRow, write_contact_sheet
from worker.imaging import has_builtin_profile, render
from worker.imaging.markers import Nclx, heif_nclx

MAX_MAD = 3.0  # mean absolute difference per channel, 0-255 (issue 16)


@functools.cache
def _generated() -> dict[str, cc.Case]:
    return {case.name: case for case in cc.generated_cases()}


def _one(data: bytes, spec: str) -> bytes:
    (rendition,) = render(data, parse_presets(spec))
    return rendition.data


@pytest.mark.parametrize("name", [case.name for case in cc.generated_cases()])
@pytest.mark.parametrize("spec", ["t:160:png", "t:160:webp:q=95", "sq:96x96:png:fit=cover:crop=centre"])
def test_every_profile_kind_comes_out_as_lcms_converts_it(name: str, spec: str) -> None:
    case = _generated()[name]
    if "cover" in spec:  # a centred square crop of the converted source, cut alike
        reference = case.reference()
        side = min(reference.size)
        left, top = (reference.width - side) // 2, (reference.height - side) // 2
        expected = reference.crop((left, top, left + side, top + side))
    else:
        expected = case.reference()
    assert cc.mad(_one(case.data, spec), expected) <= MAX_MAD


CORPUS = cc.corpus_cases()


@pytest.mark.skipif(not CORPUS, reason="../shared/corpus is not beside the checkout")
@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_real_tagged_photos_come_out_as_lcms_converts_them(case: cc.Case) -> None:
    assert cc.mad(_one(case.data, "t:256:png"), case.reference()) <= MAX_MAD


def test_a_wide_gamut_photo_ignored_would_fail_the_yardstick() -> None:
    """The yardstick can fail: ProPhoto device values read as if sRGB are far from the converted source."""
    case = _generated()["ProPhoto JPEG"]
    stripped = cc.save(Image.open(io.BytesIO(case.data)), "PNG", None)
    assert cc.mad(_one(stripped, "t:160:png"), case.reference()) > 3 * MAX_MAD


def _profile_of(data: bytes) -> bytes | None:
    profile = Image.open(io.BytesIO(data)).info.get("icc_profile")
    return bytes(profile) if profile else None


@pytest.mark.parametrize("name", ["ProPhoto JPEG", "CMYK JPEG, no profile", "XYB JPEG (CLUT profile)"])
@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png", "avif"])
def test_keep_icc_attaches_srgb_never_the_source_profile(name: str, fmt: str) -> None:
    out = _one(_generated()[name].data, f"t:96:{fmt}:keep=icc")
    profile = _profile_of(out) if fmt != "avif" else _avif_profile(out)
    assert profile is not None
    assert profile == cc.shipped("srgb")
    assert _profile_of(_one(_generated()[name].data, f"t:96:{fmt}")) is None


def _avif_profile(data: bytes) -> bytes | None:
    image = pyvips.Image.new_from_buffer(data, "")
    return bytes(image.get("icc-profile-data")) if image.get_typeof("icc-profile-data") else None


def test_keep_icc_on_a_greyscale_source_writes_grey_without_an_rgb_profile() -> None:
    out = Image.open(io.BytesIO(_one(_generated()["Grey Gamma 2.2 JPEG"].data, "t:96:jpeg:keep=icc")))
    assert out.mode == "L"
    assert "icc_profile" not in out.info


def test_keep_icc_on_an_srgb_source_keeps_its_own_srgb_profile() -> None:
    srgb = bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    data = cc.save(cc.picture(), "JPEG", srgb, quality=90)
    assert _profile_of(_one(data, "t:96:jpeg:keep=icc")) == srgb


@pytest.mark.skipif(not has_builtin_profile("p3"), reason="this libvips has no built-in Display P3 profile")
def test_avif_with_display_p3_nclx_and_no_icc_is_converted_from_p3() -> None:
    p3 = cc.shipped("p3")
    device = cc.to_device(cc.picture(), p3, "RGB")
    image = pyvips.Image.new_from_memory(device.tobytes(), device.width, device.height, 3, "uchar")
    data = bytearray(image.heifsave_buffer(compression="av1", lossless=True))
    box = data.find(b"colrnclx")
    assert box > 0
    data[box + 8 : box + 10] = (12).to_bytes(2, "big")  # ColourPrimaries 12: Display P3
    nclx = heif_nclx(bytes(data))
    assert isinstance(nclx, Nclx)
    assert nclx.primaries == 12
    reference = cc._device_reference(device, p3)()
    assert cc.mad(_one(bytes(data), "t:160:png"), reference) <= MAX_MAD
    untouched = bytes(image.heifsave_buffer(compression="av1", lossless=True))  # nclx 1/13: sRGB as is
    assert cc.mad(_one(untouched, "t:160:png"), device) <= MAX_MAD


def test_nclx_reader_ignores_what_is_not_a_heif_colour_box() -> None:
    assert heif_nclx(b"") is None
    assert heif_nclx(cc.save(cc.picture(), "JPEG", None)) is None
    assert heif_nclx(b"\x00\x00\x00\x18ftypavif" + b"\xff" * 64) is None


def test_a_corrupt_embedded_profile_is_ignored_like_libvips_does() -> None:
    data = cc.save(cc.picture(), "JPEG", b"not an icc profile at all" * 8, quality=90)
    plain = cc.save(cc.picture(), "JPEG", None, quality=90)
    assert _pixels(_one(data, "t:96:png")) == _pixels(_one(plain, "t:96:png"))
    assert _profile_of(_one(data, "t:96:jpeg:keep=icc")) is None  # never written on


def test_a_profile_for_other_pixels_is_ignored() -> None:
    """An RGB profile on a greyscale JPEG, a CMYK profile on an RGB one: lcms can't apply them."""
    grey = cc.picture().convert("L")
    tagged = cc.save(grey, "JPEG", cc.PROPHOTO, quality=90)
    assert _pixels(_one(tagged, "t:96:png")) == _pixels(
        _one(cc.save(grey, "JPEG", None, quality=90), "t:96:png")
    )
    rgb = cc.save(cc.picture(), "JPEG", cc.shipped("cmyk"), quality=90)
    plain = cc.save(cc.picture(), "JPEG", None, quality=90)
    assert _pixels(_one(rgb, "t:96:png")) == _pixels(_one(plain, "t:96:png"))


def _pixels(data: bytes) -> bytes:
    return Image.open(io.BytesIO(data)).convert("RGB").tobytes()


# --- sRGB sources: no conversion, no change -----------------------------------------------------------

_SRGB_PROFILES = {
    "none": None,
    "pillow-srgb": bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()),
    "libvips-srgb": cc.shipped("srgb"),
}


@settings(max_examples=25, deadline=None)
@given(
    width=st.integers(8, 96),
    height=st.integers(8, 96),
    seed=st.integers(0, 2**32 - 1),
    profile=st.sampled_from(sorted(_SRGB_PROFILES)),
    spec=st.sampled_from(["t:48:jpeg", "t:40:webp", "t:32x32:png:fit=cover", "t:64:png:up=1"]),
)
def test_srgb_sources_render_exactly_as_untagged_ones(
    width: int, height: int, seed: int, profile: str, spec: str
) -> None:
    """An sRGB-tagged source is not colour-converted: the same bytes as the same pixels untagged, which is
    what the core wrote before colour management (it never touched untagged pixels)."""
    source = Image.frombytes("RGB", (width, height), _noise(width * height * 3, seed)).resize((width, height))
    tagged = cc.save(source, "PNG", _SRGB_PROFILES[profile])
    untagged = cc.save(source, "PNG", None)
    assert _one(tagged, spec) == _one(untagged, spec)


def _noise(length: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(length)


# --- the demo's contact sheet ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ProPhoto JPEG", "CMYK JPEG, no profile", "Adobe RGB PNG with alpha"])
def test_contact_sheet_shows_sources_colour_managed(tmp_path: Path, name: str) -> None:
    case = _generated()[name]
    source = tmp_path / "sources" / ("photo.png" if "PNG" in name else "photo.jpg")
    source.parent.mkdir()
    source.write_bytes(case.data)
    thumb = tmp_path / "thumbnails" / "photo" / "t.png"
    thumb.parent.mkdir(parents=True)
    thumb.write_bytes(_one(case.data, "t:128:png"))
    html_path, png_path = write_contact_sheet([SheetRow(source, [thumb], "photo")], tmp_path)
    (preview,) = (tmp_path / "previews").iterdir()
    assert f"src='previews/{preview.name}'" in html_path.read_text()
    assert cc.mad(preview.read_bytes(), case.reference()) <= MAX_MAD
    tile = (
        Image.open(png_path).convert("RGB").crop((12, 44, 12 + 256, 44 + 192))
    )  # a 4:3 tile centred in its cell
    expected = cc._over_grey(case.reference().convert("RGBA")) if "alpha" in name else case.reference()
    reference = expected.convert("RGB").resize((256, 192), Image.Resampling.LANCZOS)
    if "alpha" not in name:  # the sheet composites alpha on its own backdrop
        assert cc.mad(_png(tile), reference) <= MAX_MAD


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
