"""Every file of the shared corpus renders correctly or is refused with a typed reason that fits its folder.

The renders run in a child process with a memory cap and a per-file watchdog (tests/corpus/runner.py), so a
hostile file can only fail its own check. Outputs are read back with Pillow, an independent decoder.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageCms, ImageFile, ImageOps, ImageStat

from tests.corpus.runner import run_corpus
from tests.heic import pillow_heif

REPO = Path(__file__).resolve().parents[2]
TYPED = {"ok", "corrupt_image", "unsupported_format", "image_too_large", "render_timeout"}
BOXES = {"lg": (512, 512), "sm": (128, 128), "sq": (96, 96)}
FORMATS = {"image/jpeg": "JPEG", "image/webp": "WEBP", "image/png": "PNG"}


def corpus_dir() -> Path | None:
    for candidate in (os.environ.get("THUMBX_SHARED"), REPO.parent / "shared", Path("/work/shared")):
        if candidate and (Path(candidate) / "corpus").is_dir():
            return Path(candidate) / "corpus"
    return None


CORPUS = corpus_dir()
pillow_heif.register_heif_opener()  # Pillow reads HEIC/HEIF as the independent reference decoder
pytestmark = pytest.mark.skipif(CORPUS is None, reason="no shared corpus (set THUMBX_SHARED)")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    assert CORPUS is not None
    files = sorted(str(p) for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".md", ".tsv"))
    _build, found = run_corpus(files, tmp_path_factory.mktemp("corpus-out"))
    assert len(found) == len(files)
    return {str(Path(path).relative_to(CORPUS)): result for path, result in found.items()}


def of(results: dict[str, dict[str, Any]], folder: str) -> dict[str, dict[str, Any]]:
    return {path: result for path, result in results.items() if path.startswith(folder + "/")}


def test_no_file_crashes_hangs_or_escapes_without_a_typed_error(results: dict[str, dict[str, Any]]) -> None:
    bad = {path: (r["outcome"], r.get("message")) for path, r in results.items() if r["outcome"] not in TYPED}
    assert bad == {}


def test_every_camera_jpeg_renders(results: dict[str, dict[str, Any]]) -> None:
    photos = of(results, "photos/jpeg")
    assert len(photos) >= 30
    assert {path: r.get("message") for path, r in photos.items() if r["outcome"] != "ok"} == {}


def test_orientation_sets_all_render(results: dict[str, dict[str, Any]]) -> None:
    failed = {p: r.get("message") for p, r in of(results, "edge/orientation").items() if r["outcome"] != "ok"}
    assert failed == {}


def test_every_other_phone_photo_renders_heic_included(results: dict[str, dict[str, Any]]) -> None:
    photos = of(results, "photos/other")
    assert sum(path.lower().endswith((".heic", ".heif")) for path in photos) >= 6
    assert {path: r.get("message") for path, r in photos.items() if r["outcome"] != "ok"} == {}


def test_formats_outside_the_allow_list_are_refused_as_unsupported(
    results: dict[str, dict[str, Any]],
) -> None:
    refused = of(results, "edge/other-formats")
    assert refused
    assert {path: r["outcome"] for path, r in refused.items() if r["outcome"] != "unsupported_format"} == {}


def test_broken_files_are_refused_or_really_are_images(results: dict[str, dict[str, Any]]) -> None:
    broken = of(results, "bad")
    refused = [r for r in broken.values() if r["outcome"] != "ok"]
    assert len(refused) > len(broken) // 2  # most of the fuzzed files must be refused
    for result in broken.values():
        assert result["outcome"] in TYPED


def test_every_output_is_a_valid_stripped_thumbnail_inside_its_box(
    results: dict[str, dict[str, Any]],
) -> None:
    checked = 0
    for path, result in results.items():
        if result["outcome"] != "ok":
            continue
        for output in result["outputs"]:
            image = Image.open(output["file"])
            image.load()
            where = f"{path} -> {output['preset']}"
            assert image.format == FORMATS[output["content_type"]], where
            assert image.size == (output["width"], output["height"]), where
            box = BOXES[output["preset"]]
            assert 0 < image.width <= box[0], where
            assert 0 < image.height <= box[1], where
            if output["preset"] == "sq":
                assert image.size == (min(box[0], image.width), min(box[1], image.height)), where
            assert image.mode in ("RGB", "RGBA", "L", "LA"), where
            assert dict(image.getexif()) == {}, where
            assert "icc_profile" not in image.info, where
            checked += 1
    assert checked > 1000


def _reference(source: Path, size: tuple[int, int]) -> Image.Image:
    """The source decoded by Pillow: EXIF orientation applied, converted to sRGB, resized to ``size``.

    HEIC/HEIF through pillow-heif (its own libheif build; it applies irot/imir and resets the EXIF tag, so
    exif_transpose leaves the picture as libheif made it).
    """
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    image: Image.Image = Image.open(source)
    image.draft("RGB", (size[0] * 2, size[1] * 2))
    icc = image.info.get("icc_profile")
    image = ImageOps.exif_transpose(image)
    if icc:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            image, profile, ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
        assert converted is not None  # inPlace=False returns the new image
        image = converted
    return image.convert("RGB").resize(size, Image.Resampling.BOX)


def _difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel (0-255) of two same-sized images."""
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


REFERENCE_FOLDERS = ("photos/jpeg", "photos/other", "edge/orientation", "edge/jpeg", "edge/heif-avif")


def test_pictures_match_an_independent_decode_upright_and_in_srgb(results: dict[str, dict[str, Any]]) -> None:
    """Orientation (all eight, mirrored too) and ICC handling agree with Pillow's, on every JPEG/WebP/HEIC.

    Our output must be closer to Pillow's upright decode than to any of its seven other rotations/mirrors,
    and close in colour (different resamplers and colour engines leave a few levels of difference).
    """
    assert CORPUS is not None
    compared = 0
    for path, result in results.items():
        folder = path.rsplit("/", 1)[0]
        if result["outcome"] != "ok" or folder not in REFERENCE_FOLDERS:
            continue
        if not path.lower().endswith((".jpg", ".jpeg", ".webp", ".heic", ".heif")):
            continue
        with Image.open(CORPUS / path) as probe:
            if probe.mode == "CMYK":  # Pillow's naive CMYK conversion is no reference
                continue
            if probe.mode in ("RGBA", "LA"):  # colour under transparent pixels is arbitrary; see test_heic.py
                continue
        output = next(o for o in result["outputs"] if o["preset"] == "sm")
        ours = Image.open(output["file"])
        upright = _reference(CORPUS / path, ours.size)
        difference = _difference(ours, upright)
        assert difference < 20, f"{path}: mean difference {difference:.1f} from Pillow's upright sRGB decode"
        for transpose in Image.Transpose:
            other = _difference(ours, upright.transpose(transpose).resize(ours.size, Image.Resampling.BOX))
            if other <= difference and ImageStat.Stat(upright).stddev[0] > 8:
                pytest.fail(f"{path}: looks more like Pillow's decode after {transpose.name} ({other:.1f})")
        compared += 1
    assert compared >= 80
