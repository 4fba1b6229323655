"""`thumbx render DIR`: a folder is walked, outputs mirror it, a summary line, exit status by outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.unit.images import encode
from worker.cli.main import main


def _png(path: Path, size: tuple[int, int] = (200, 100)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(Image.new("RGB", size, (40, 90, 200)), "PNG"))


def test_a_folder_is_walked_and_summarised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THUMBX_PRESETS", "sm:32:webp")
    photos = tmp_path / "photos"
    _png(photos / "a.png")
    _png(photos / "2024" / "beach.png")
    (photos / "notes.txt").write_text("not an image")
    (photos / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    _png(photos / ".git" / "hidden.png")
    out = tmp_path / "out"

    status = main(["render", str(photos), "--out", str(out)])

    lines = capsys.readouterr().out.splitlines()
    assert status == 1
    assert [line.split(":")[0] for line in lines[:-1]] == [
        str(photos / "a.png"),
        str(photos / "notes.txt"),
        str(photos / "2024" / "beach.png"),
    ]
    assert lines[1].startswith(f"{photos / 'notes.txt'}: refused ")
    assert lines[-1] == "2 ok, 1 refused"
    assert Image.open(out / "a.png" / "sm.webp").size == (32, 16)
    assert Image.open(out / "2024" / "beach.png" / "sm.webp").size == (32, 16)
    assert not (out / ".git").exists()


def test_all_rendered_exits_0_and_files_and_folders_mix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THUMBX_PRESETS", "sm:32:webp")
    _png(tmp_path / "in" / "x.png")
    _png(tmp_path / "single.png")
    out = tmp_path / "out"
    assert main(["render", str(tmp_path / "in"), str(tmp_path / "single.png"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 ok, 0 refused"
    assert sorted(p.name for p in out.iterdir()) == ["single.png", "x.png"]


def test_missing_files_are_counted_as_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(tmp_path / "gone.jpg"), "--out", str(tmp_path / "out")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{tmp_path / 'gone.jpg'}: unreadable: No such file or directory",
        "0 ok, 0 refused, 1 unreadable",
    ]


def test_an_empty_folder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["render", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err == f"thumbx render: no files under {tmp_path / 'empty'}\n"
