from pathlib import Path

import pytest
from PIL import Image

from tests.unit.images import encode, oriented_jpeg
from worker.cli.main import main


def test_render_writes_every_preset_and_reports_refusals_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THUMBX_PRESETS", "sm:32:webp,md:64:jpeg")
    good = tmp_path / "photo.jpg"
    good.write_bytes(oriented_jpeg(6))
    svg = tmp_path / "drawing.svg"
    svg.write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>')
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(encode(Image.effect_noise((300, 200), 50).convert("RGB"))[:2000])
    out = tmp_path / "out"

    status = main(["render", str(good), str(svg), str(cut), "--out", str(out)])

    lines = capsys.readouterr().out.splitlines()
    assert status == 1
    assert len(lines) == 4
    assert lines[3] == "1 ok, 2 refused"
    assert lines[0].startswith(f"{good}: ok")
    assert Image.open(out / "photo.jpg" / "sm.webp").size == (32, 21)  # upright 120x80 once rotated
    assert Image.open(out / "photo.jpg" / "md.jpg").size == (64, 43)
    assert lines[1].startswith(f"{svg}: refused unsupported_format: ")  # wording depends on the build
    assert lines[2].startswith(f"{cut}: refused corrupt_image: ")
    assert "Traceback" not in "\n".join(lines)


def test_render_one_preset_exits_0_when_all_files_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "a.png"
    source.write_bytes(encode(Image.new("RGB", (300, 300), (10, 20, 30)), "PNG"))

    status = main(["render", str(source), "--out", str(tmp_path / "out"), "--preset", "sm"])

    assert status == 0
    assert sorted(p.name for p in (tmp_path / "out" / "a.png").iterdir()) == ["sm.webp"]
    assert "sm.webp 128x128" in capsys.readouterr().out


def test_limits_come_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THUMBX_ALLOWED_FORMATS", "jpeg")
    source = tmp_path / "a.png"
    source.write_bytes(encode(Image.new("RGB", (30, 30)), "PNG"))
    assert main(["render", str(source), "--out", str(tmp_path / "out")]) == 1
    assert "refused unsupported_format: png input is not accepted" in capsys.readouterr().out
    monkeypatch.setenv("THUMBX_ALLOWED_FORMATS", "jpeg,bmp")
    assert main(["render", str(source), "--out", str(tmp_path / "out")]) == 2
    assert "THUMBX_ALLOWED_FORMATS" in capsys.readouterr().err
