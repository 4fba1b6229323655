"""HEIC/HEIF from the shared corpus: phone photos upright and in the right colours, fuzz files refused.

Two independent checks beside tests/corpus/test_corpus.py (which renders every file of the corpus):
the phone photos compared with pillow-heif's decode (its own libheif build, converted to sRGB by
littleCMS and resized alike), with a tighter bound than the JPEG check; and libheif's own fuzz-minimised
files fed straight to worker/imaging/heif.py, past libvips' sniffing and header, in a child process so a
native crash fails the test instead of killing pytest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from tests.corpus.runner import run_corpus
from tests.corpus.test_corpus import CORPUS, REPO, TYPED, _difference, _reference

pytestmark = pytest.mark.skipif(CORPUS is None, reason="no shared corpus (set THUMBX_SHARED)")
HEIF = (".heic", ".heif")
# Both pictures are compared at 1/8 of the 512-px rendition, so the resamplers' differences (BOX vs
# lanczos, sharpening) drop out and what is left is colour and geometry. Measured: 0.35-1.2 for untagged
# and sRGB-tagged files; the Display-P3 iPhone photos must match the colour-managed reference closely.
MAX_DIFFERENCE = 5.0
MAX_DIFFERENCE_COLOUR_MANAGED = 2.0


def heif_files(*folders: str) -> list[Path]:
    assert CORPUS is not None
    return sorted(p for f in folders for p in (CORPUS / f).iterdir() if p.suffix.lower() in HEIF)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    files = [str(p) for p in heif_files("photos/other", "edge/heif-avif")]
    _build, found = run_corpus(files, tmp_path_factory.mktemp("heic-out"))
    return found


def compare(path: str, result: dict[str, Any]) -> tuple[float, Image.Image, Image.Image]:
    """(difference, ours, reference), both at 1/8 of the 512-px JPEG rendition."""
    output = next(o for o in result["outputs"] if o["preset"] == "lg")
    ours = Image.open(output["file"]).convert("RGB")
    small = (max(1, ours.width // 8), max(1, ours.height // 8))
    reference = _reference_on_white(Path(path), ours.size).resize(small, Image.Resampling.BOX)
    ours = ours.resize(small, Image.Resampling.BOX)
    return _difference(ours, reference), ours, reference


def _reference_on_white(path: Path, size: tuple[int, int]) -> Image.Image:
    with Image.open(path) as opened:
        alpha = opened.mode in ("RGBA", "LA")
    if not alpha:
        return _reference(path, size)
    with Image.open(path) as opened:  # the JPEG preset flattens on its default background, white
        white = Image.new("RGBA", opened.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, opened.convert("RGBA")).convert("RGB")
        return flat.resize(size, Image.Resampling.BOX)


def test_phone_heic_photos_render_upright_with_the_colours_pillow_heif_shows(
    photos: dict[str, dict[str, Any]],
) -> None:
    compared = []
    for path, result in photos.items():
        name = Path(path).name
        if "uncompressed" in name:  # ISO 23001-17 'unci', no HEVC: refused by libvips' header read
            assert result["outcome"] in ("unsupported_format", "corrupt_image"), name  # 8.18 / 8.14
            continue
        assert result["outcome"] == "ok", (name, result.get("message"))
        difference, ours, reference = compare(path, result)
        assert difference < MAX_DIFFERENCE, f"{name}: mean difference {difference:.2f} from pillow-heif"
        if ImageStat.Stat(reference).stddev[0] > 8:  # a flat grey wall looks the same any way up
            for transpose in Image.Transpose:
                turned = reference.transpose(transpose).resize(ours.size, Image.Resampling.BOX)
                assert _difference(ours, turned) > difference, f"{name}: looks {transpose.name}"
        compared.append(name)
    assert len(compared) >= 12


def test_icc_tagged_heic_photos_match_the_colour_managed_reference_closely(
    photos: dict[str, dict[str, Any]],
) -> None:
    far = {}
    for path, result in photos.items():
        if result["outcome"] == "ok":
            difference, _ours, _reference_image = compare(path, result)
            if difference >= MAX_DIFFERENCE_COLOUR_MANAGED:
                far[Path(path).name] = round(difference, 2)
    assert far == {}


CHILD = """
import json, sys
from worker.core.errors import ImageError
from worker.imaging import heif
for path in sys.argv[1:]:
    print(json.dumps({"path": path, "started": True}), flush=True)
    try:
        image = heif.load(open(path, "rb").read())
        image.avg()  # read every pixel
        outcome = "ok"
    except ImageError as exc:
        outcome = exc.reason
    print(json.dumps({"path": path, "outcome": outcome}), flush=True)
"""


def test_libheif_fuzz_files_fed_straight_to_the_heic_decoder_are_typed_refusals() -> None:
    assert CORPUS is not None
    files = sorted(str(p) for p in (CORPUS / "bad" / "heif").iterdir() if p.is_file())
    assert len(files) >= 30
    child = subprocess.run(
        [sys.executable, "-c", CHILD, *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    lines = [json.loads(line) for line in child.stdout.splitlines()]
    outcomes = {line["path"]: line["outcome"] for line in lines if "outcome" in line}
    started = [line["path"] for line in lines if "started" in line]
    last = started[-1] if started else "?"
    died = f"decoder died (exit {child.returncode}) on {last}: {child.stderr[-500:]}"
    assert child.returncode == 0, died
    assert sorted(outcomes) == files
    assert set(outcomes.values()) <= TYPED
    assert sum(o != "ok" for o in outcomes.values()) >= len(files) - 2  # these files are broken on purpose


def test_the_fuzz_files_through_the_whole_core_are_typed_refusals(tmp_path: Path) -> None:
    assert CORPUS is not None
    files = sorted(str(p) for p in (CORPUS / "bad" / "heif").iterdir() if p.is_file())
    _build, found = run_corpus(files, tmp_path)
    assert {Path(p).name: r["outcome"] for p, r in found.items() if r["outcome"] not in TYPED} == {}
    assert all(r["outcome"] != "ok" for r in found.values())
