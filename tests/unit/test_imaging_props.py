"""Property tests: whatever the image and box, the output fits, never upscales unasked, never is 0 px."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.unit.images import encode, open_output
from worker.core.presets import Preset
from worker.imaging import render

sides = st.integers(min_value=1, max_value=700)
boxes = st.integers(min_value=1, max_value=400)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=sides,
    height=sides,
    box_w=boxes,
    box_h=boxes,
    fit=st.sampled_from(["inside", "cover"]),
    upscale=st.booleans(),
    fmt=st.sampled_from(["jpeg", "webp", "png"]),
    orientation=st.sampled_from([1, 6]),
)
def test_outputs_fit_the_box_and_never_upscale_unless_asked(
    width: int, height: int, box_w: int, box_h: int, fit: str, upscale: bool, fmt: str, orientation: int
) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    source = encode(Image.new("RGB", (width, height), (90, 140, 200)), "JPEG", exif=exif.tobytes())
    upright_w, upright_h = (height, width) if orientation == 6 else (width, height)
    preset = Preset(
        "p", box_w, box_h, fmt, fit=fit, crop="centre" if fit == "cover" else "attention", upscale=upscale
    )

    (rendition,) = render(source, [preset])

    image = open_output(rendition.data)
    assert image.size == (rendition.width, rendition.height)
    assert 1 <= image.width <= box_w
    assert 1 <= image.height <= box_h
    if not upscale:
        assert image.width <= upright_w
        assert image.height <= upright_h
    if fit == "cover" and (upscale or (upright_w >= box_w and upright_h >= box_h)):
        assert image.size == (box_w, box_h)
    if fit == "inside":  # each side within a pixel of the exactly scaled source (and at least 1 px)
        scale = min(box_w / upright_w, box_h / upright_h)
        scale = scale if upscale else min(scale, 1.0)
        assert abs(image.width - max(1.0, upright_w * scale)) <= 1
        assert abs(image.height - max(1.0, upright_h * scale)) <= 1
