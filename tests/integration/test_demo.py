"""`thumbx demo` as a user runs it: exit status, upright thumbnails on disk, contact sheet, table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.support import jpeg_bytes

pytestmark = pytest.mark.slow


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli.main", "demo", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _is_upright(path: Path) -> bool:
    """The samples have blue sky on top and green ground at the bottom."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    w, h = image.size
    top = image.getpixel((w // 8, h // 10))
    bottom = image.getpixel((w // 8, h - h // 5))
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    return top[2] > top[1] and bottom[1] > bottom[2]


def test_demo_with_builtin_samples(tmp_path: Path) -> None:
    proc = _demo("--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = {row["source"]: row for row in json.loads((tmp_path / "summary.json").read_text())}
    assert summary["not-an-image.jpg"]["outcome"] == "permanent"
    assert summary["not-an-image.jpg"]["reason"] == "unsupported_format"
    rendered = [name for name, row in summary.items() if row["outcome"] == "succeeded"]
    assert len(rendered) == len(summary) - 1
    for name in rendered:
        for preset, longest in (("sm.webp", 128), ("md.jpg", 512), ("lg.jpg", 1024)):
            thumb = tmp_path / "thumbnails" / name / preset
            with Image.open(thumb) as image:
                assert max(image.size) <= longest
                assert image.getexif().get(0x0112) in (None, 1), f"{thumb}: orientation tag left in"
            if name != "logo.png":
                assert _is_upright(thumb), f"{thumb} is not upright"
    page = (tmp_path / "index.html").read_text()
    assert page.count("<img src='thumbnails/") == 3 * len(rendered)
    assert page.count("<img class=source") == len(summary) + page.count("as stored (EXIF orientation")
    # the HEIC sample (irot 270 + EXIF 6, as an iPhone writes it) rendered upright above; browsers other
    # than Safari cannot show HEIC, so index.html shows the sRGB PNG preview every source gets
    assert summary["phone photo.heic"]["outcome"] == "succeeded"
    with Image.open(tmp_path / "thumbnails" / "phone photo.heic" / "lg.jpg") as image:
        assert image.size == (768, 1024)
    assert "previews/sources__phone%20photo.heic.png" in page
    assert _is_upright(tmp_path / "previews" / "sources__phone photo.heic.png")
    with Image.open(tmp_path / "contact-sheet.png") as sheet:
        assert sheet.height > 256 * len(summary)
    # the sideways-stored samples are shown as stored too (the HEIC's rotation is libheif's, not EXIF's)
    for name in ("phone portrait.jpg", "rotated+left.jpg", "mirrored.jpg", "upside down.jpg"):
        assert (tmp_path / "previews" / f"sources__{name}.stored.png").is_file()
    table = proc.stdout
    assert "phone portrait.jpg" in table
    assert "sm, md, lg " in table, "presets only: the manifest is not one"
    assert "permanent (unsupported_format)" in table


def test_demo_with_own_images_and_a_missing_folder(tmp_path: Path) -> None:
    images = tmp_path / "mine"
    (images / "nested").mkdir(parents=True)
    (images / "one.jpg").write_bytes(jpeg_bytes(300, 200))
    (images / "nested" / "two.jpg").write_bytes(jpeg_bytes(200, 300, orientation=6))
    out = tmp_path / "out"
    proc = _demo("--images", str(images), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "thumbnails" / "nested" / "two.jpg" / "sm.webp").exists()
    with Image.open(out / "thumbnails" / "nested" / "two.jpg" / "lg.jpg") as image:
        assert image.size == (300, 200), "EXIF 6 on a 200x300 source displays as 300x200 (never upscaled)"
    missing = _demo("--images", str(tmp_path / "nope"), "--out", str(out))
    assert missing.returncode == 2
