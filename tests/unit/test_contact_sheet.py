"""The demo's contact sheet as a reader checks it: URLs that resolve for any file name, every rendition at
its own size with its pixel size and bytes, the sideways original beside the upright one, a failure's
detail in full."""

from __future__ import annotations

import io
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image

from worker.demo.contact_sheet import CHAR_PX, FAILURE_TEXT_WIDTH, SheetRow, plan_sheet, write_contact_sheet
from worker.demo.samples import demo_samples

AWKWARD = ["a #1.jpg", "what?.jpg", "100% & more.jpg", "grüße aus köln.jpg", "dir with space/x.jpg"]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value is not None]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 90, 200)).save(out, "JPEG")
    return out.getvalue()


def _rendered(out: Path, name: str, data: bytes) -> SheetRow:
    source = out / "sources" / name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(data)
    thumbs = []
    for preset, size in (("sm.jpg", (128, 85)), ("md.jpg", (512, 341)), ("lg.jpg", (1024, 683))):
        thumb = out / "thumbnails" / name / preset
        thumb.parent.mkdir(parents=True, exist_ok=True)
        thumb.write_bytes(_jpeg(*size))
        thumbs.append(thumb)
    return SheetRow(source, thumbs, name, "succeeded (rendered)")


def test_index_html_urls_resolve_for_names_with_hash_query_percent_spaces_and_umlauts(tmp_path: Path) -> None:
    rows = [_rendered(tmp_path, name, _jpeg(300, 200)) for name in AWKWARD]
    html_path, _ = write_contact_sheet(rows, tmp_path)
    parser = _Links()
    parser.feed(html_path.read_text(encoding="utf-8"))
    assert len(parser.urls) == len(AWKWARD) * (2 + 3)  # source link + preview + three thumbnails
    for url in parser.urls:
        assert not set(url) & set("#? &"), url  # nothing a browser cuts off or guesses at
        assert url.isascii(), url
        assert (tmp_path / unquote(url)).is_file(), url
    text = "".join(parser.text)
    for name in AWKWARD:
        assert name in text  # shown as written (html.escape'd in the page, unescaped by the parser)
    assert "100%25%20%26%20more.jpg/md.jpg" in html_path.read_text(encoding="utf-8")


def test_each_rendition_is_drawn_at_its_own_size_and_labelled_with_size_and_bytes(tmp_path: Path) -> None:
    row = _rendered(tmp_path, "landscape.jpg", _jpeg(2400, 1600))
    plan = plan_sheet([row])
    tiles = {t.path.name: t for t in plan.tiles if t.kind == "rendition" and t.path is not None}
    assert {name: (t.width, t.height) for name, t in tiles.items()} == {
        "sm.jpg": (128, 85),
        "md.jpg": (512, 341),
        "lg.jpg": (1024, 683),
    }
    md_bytes = (tmp_path / "thumbnails" / "landscape.jpg" / "md.jpg").stat().st_size
    assert tiles["md.jpg"].lines[0] == f"md.jpg 512x341 {md_bytes / 1000:.1f} kB"
    _, png = write_contact_sheet([row], tmp_path)
    with Image.open(png) as sheet:
        assert sheet.width >= sum(t.width for t in tiles.values())
        lg = tiles["lg.jpg"]
        assert sheet.convert("RGB").getpixel((lg.x + lg.width - 3, lg.y + lg.height - 3)) != (34, 34, 34)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "width=1024 height=683" in html
    assert "lg.jpg 1024x683" in html
    assert "max-width:256px" not in html.split("img.source")[0], "thumbnails are not scaled to one size"


def _sideways() -> bytes:
    return next(s.data for s in demo_samples() if s.name == "phone portrait.jpg")  # EXIF 6


def test_a_sideways_source_is_shown_as_stored_beside_the_upright_one(tmp_path: Path) -> None:
    sideways = _rendered(tmp_path, "phone portrait.jpg", _sideways())
    plain = _rendered(tmp_path, "plain.jpg", _jpeg(300, 200))
    plan = plan_sheet([sideways, plain])
    stored = [t for t in plan.tiles if t.kind == "stored"]
    assert [t.path for t in stored] == [sideways.source], "only the sideways source gets an as-stored tile"
    assert stored[0].lines == ("as stored", "EXIF orientation 6")
    _, png = write_contact_sheet([sideways, plain], tmp_path)
    upright = next(t for t in plan.tiles if t.kind == "upright" and t.path == sideways.source)
    with Image.open(png) as opened:
        sheet = opened.convert("RGB")

    def is_sky(x: int, y: int) -> bool:
        _r, g, b = sheet.getpixel((x, y))  # type: ignore[misc]
        return b > 150 and b > g

    # stored with EXIF 6 = rotated 90° counter-clockwise: sky on the left; shown upright: sky on top
    cx, cy = stored[0].x + stored[0].width // 2, stored[0].y + stored[0].height // 2
    assert is_sky(cx - 100, cy + 50)
    assert not is_sky(cx + 100, cy + 50)
    ux, uy = upright.x + upright.width // 2, upright.y + upright.height // 2
    assert is_sky(ux - 60, uy - 60)
    assert not is_sky(ux - 60, uy + 60)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert html.count("as stored (EXIF orientation 6)") == 1
    assert "previews/sources__phone%20portrait.jpg.stored.png" in html


@pytest.mark.parametrize("detail_words", [3, 80])
def test_a_failure_shows_its_outcome_and_whole_detail_wrapped(tmp_path: Path, detail_words: int) -> None:
    source = tmp_path / "sources" / "not-an-image.jpg"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"%PDF-1.4 this is not a JPEG\n")
    detail = " ".join(f"word{i}" for i in range(detail_words)) + " <end & done>"
    row = SheetRow(source, [], "not-an-image.jpg", "permanent (unsupported_format)", detail)
    (text,) = [t for t in plan_sheet([row]).tiles if t.kind == "text"]
    assert text.lines[0] == "permanent (unsupported_format)"
    assert " ".join(text.lines[1:]) == detail
    assert all(len(line) * CHAR_PX <= FAILURE_TEXT_WIDTH for line in text.lines)
    html_path, png = write_contact_sheet([row], tmp_path)
    assert "&lt;end &amp; done&gt;" in html_path.read_text(encoding="utf-8")
    with Image.open(png) as sheet:
        assert sheet.height >= text.y + len(text.lines) * 16
