"""ThumbHash and dominant colour (pure): checked by decoding what a front-end would decode."""

from __future__ import annotations

import base64

import pytest

from worker.imaging.palette import dominant_colour
from worker.imaging.thumbhash import rgba_to_thumbhash


def solid(w: int, h: int, rgba: tuple[int, int, int, int]) -> bytes:
    return bytes(rgba) * (w * h)


def header(hash_: bytes) -> dict[str, float | bool]:
    """The DC terms and flags, decoded as the specification's decoder does (independent of the encoder)."""
    h24 = hash_[0] | hash_[1] << 8 | hash_[2] << 16
    h16 = hash_[3] | hash_[4] << 8
    lum = (h24 & 63) / 63
    p = ((h24 >> 6) & 63) / 31.5 - 1
    q = ((h24 >> 12) & 63) / 31.5 - 1
    b = lum - 2 / 3 * p
    r = (3 * lum - b + q) / 2
    return {
        "r": r,
        "g": r - q,
        "b": b,
        "alpha": bool(h24 >> 23),
        "landscape": bool(h16 >> 15),
        "l_scale": ((h24 >> 18) & 31) / 31,
    }


def test_a_solid_colour_decodes_to_that_colour() -> None:
    got = header(rgba_to_thumbhash(40, 20, solid(40, 20, (255, 0, 0, 255))))
    assert (round(got["r"], 1), round(got["g"], 1), round(got["b"], 1)) == (1.0, 0.0, 0.0)
    assert got["landscape"] is True
    assert got["alpha"] is False
    assert got["l_scale"] == 0, "no detail in a flat image"


def test_a_gradient_has_detail_and_a_portrait_is_not_landscape() -> None:
    w, h = 20, 40
    px = b"".join(bytes((0, 0, 0, 255)) if y < h // 2 else bytes((255, 255, 255, 255)) for y in range(h)
                  for _ in range(w))  # fmt: skip
    hash_ = rgba_to_thumbhash(w, h, px)
    got = header(hash_)
    assert got["landscape"] is False
    assert got["l_scale"] > 0.25  # a black-to-white step: the first vertical cosine is ~0.32
    assert abs(got["r"] - 0.5) < 0.04, "the mean of black and white (6-bit DC terms)"
    assert len(hash_) == 19  # 5 header bytes + (18 L + 5 P + 5 Q) AC nibbles for an opaque 1:2 image


def test_transparency_sets_the_alpha_flag_and_still_encodes() -> None:
    px = solid(10, 10, (0, 0, 255, 255)) + solid(10, 10, (0, 0, 0, 0))
    hash_ = rgba_to_thumbhash(10, 20, px)
    got = header(hash_)
    assert got["alpha"] is True
    assert got["b"] > 0.95, "transparent pixels take the average colour of the opaque ones"
    assert base64.b64encode(hash_).decode().isascii()


def test_the_encoding_is_deterministic() -> None:
    px = bytes((x * 7) % 256 for x in range(30 * 30 * 4))
    assert rgba_to_thumbhash(30, 30, px) == rgba_to_thumbhash(30, 30, px)


@pytest.mark.parametrize(("w", "h"), [(0, 10), (101, 10), (10, 101)])
def test_sizes_outside_the_specification_are_refused(w: int, h: int) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        rgba_to_thumbhash(w, h, b"\0" * (max(w, 0) * h * 4))


def test_the_dominant_colour_is_the_largest_area_not_the_average() -> None:
    green, red = (30, 160, 40, 255), (230, 20, 20, 255)
    px = solid(10, 7, green) + solid(10, 3, red)
    assert dominant_colour(px) == "#1ea028"


def test_transparent_pixels_do_not_vote() -> None:
    px = solid(10, 9, (255, 255, 255, 0)) + solid(10, 1, (0, 0, 200, 255))
    assert dominant_colour(px) == "#0000c8"
    assert dominant_colour(solid(4, 4, (1, 2, 3, 0))) is None
