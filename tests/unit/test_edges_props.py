"""Property tests at the input boundary: whatever the body or the image bytes, a typed outcome, never
"unexpected" (an exception outside the error vocabulary)."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.unit.images import encode, quadrants
from worker.aws.s3 import ObjectHead, StoredObject
from worker.core.errors import ThumbxError
from worker.core.events import ObjectRef, parse_body
from worker.core.keys import KeyLayout
from worker.core.presets import Preset, parse_presets
from worker.imaging import Limits, Rendition, render
from worker.runtime.batch import BatchProcessor, BatchRecord, BatchSettings
from worker.runtime.pipeline import Pipeline, PipelineConfig

BUCKET = "b"
PRESETS = parse_presets("sm:16:webp,md:24:jpeg:keep=icc+copyright,lg:32:png")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class AnyObjectStore:
    """Every key exists (a few bytes); puts are accepted."""

    async def get(self, bucket: str, key: str, **_options: Any) -> StoredObject:
        return StoredObject(b"bytes", etag="e")

    async def head(
        self, bucket: str, key: str, *, missing_is_error: bool = False, version_id: str | None = None
    ) -> ObjectHead | None:
        return ObjectHead(etag="e", size=5) if missing_is_error else None

    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        return None


def fake_render(data: bytes, presets: Sequence[Preset], limits: Limits) -> list[Rendition]:
    return [Rendition(p, b"t", 1, 1) for p in presets]


def outcome_reasons(body: str) -> list[str]:
    """What the service and the Lambda shim would decide for this body: the record's and its items'."""
    pipeline = Pipeline(
        AnyObjectStore(), PipelineConfig(frozenset({BUCKET}), KeyLayout(), PRESETS), renderer=fake_render
    )
    processor = BatchProcessor(pipeline, BatchSettings(concurrency=1))
    result = asyncio.run(processor.process_record(BatchRecord(body, message_id="m")))
    return [result.reason, *(o.reason for o in result.outcomes)]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Any code point, lone surrogates (a JSON "\ud800" escape) and control characters included.
key_text = st.text(st.characters(exclude_categories=()), max_size=60) | st.just("a/../b.jpg")


@st.composite
def s3_bodies(draw: st.DrawFn) -> str:
    obj: dict[str, Any] = {"key": "input/" + draw(key_text)}
    for field in ("size", "eTag", "versionId"):
        if draw(st.booleans()):
            obj[field] = draw(json_values)
    record = {
        "eventSource": "aws:s3",
        "eventName": draw(st.sampled_from(["ObjectCreated:Put", "ObjectRemoved:Delete", 7])),
        "s3": {"bucket": {"name": draw(st.sampled_from([BUCKET, "other", 3]))}, "object": obj},
    }
    if draw(st.booleans()):
        record["s3"] = draw(json_values)
    body = json.dumps({"Records": [record]})
    if draw(st.booleans()):
        body = json.dumps({"Type": "Notification", "Message": body})
    return body


@st.composite
def nested_bodies(draw: st.DrawFn) -> str:
    depth = draw(st.integers(0, 200_000))
    opener = draw(st.sampled_from(["[", '{"a":']))
    closer = "]" if opener == "[" else "}"
    return opener * depth + draw(st.sampled_from(["1", ""])) + closer * draw(st.sampled_from([depth, 0]))


@FAST
@given(body=st.text(max_size=200) | json_values.map(json.dumps) | s3_bodies() | nested_bodies())
def test_any_body_has_a_typed_outcome(body: str) -> None:
    reasons = outcome_reasons(body)
    assert not any(reason.startswith("unexpected") for reason in reasons), reasons


def test_a_body_nested_100000_deep_is_a_bad_event() -> None:
    [item] = parse_body("[" * 100_000 + "]" * 100_000)
    assert not isinstance(item, ObjectRef)
    assert item.reason == "bad_event"
    assert outcome_reasons('{"Type": "Notification", "Message": "' + "[" * 100_000 + '"}')[1] == "bad_event"


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


SMALL = quadrants(40, 30)
BASES = {
    "jpeg": encode(SMALL, "JPEG"),
    "png": encode(SMALL, "PNG"),
    "webp": encode(SMALL, "WEBP"),
    "gif": encode(SMALL, "GIF"),
}


def with_text_chunk(keyword: bytes, value: bytes) -> bytes:
    png = BASES["png"]
    end_of_ihdr = 8 + 8 + 13 + 4
    return png[:end_of_ihdr] + png_chunk(b"tEXt", keyword + b"\0" + value) + png[end_of_ihdr:]


def assert_typed(data: bytes) -> None:
    try:
        renditions = render(data, PRESETS)
    except ThumbxError:
        return
    assert [r.preset.name for r in renditions] == [p.name for p in PRESETS]


@FAST
@given(
    keyword=st.binary(min_size=1, max_size=79).filter(lambda k: b"\0" not in k),
    value=st.binary(max_size=40),
)
def test_png_text_chunks_with_any_name_render_or_fail_typed(keyword: bytes, value: bytes) -> None:
    assert_typed(with_text_chunk(keyword, value))


@FAST
@given(copyright_line=st.binary(min_size=1, max_size=40), comment=st.binary(max_size=40))
def test_jpeg_metadata_with_any_bytes_renders_or_fails_typed(copyright_line: bytes, comment: bytes) -> None:
    exif = Image.Exif()
    exif[0x8298] = copyright_line.decode("latin-1")
    out = io.BytesIO()
    SMALL.save(out, "JPEG", exif=exif.tobytes(), comment=comment)
    assert_typed(out.getvalue())


@FAST
@given(
    fmt=st.sampled_from(sorted(BASES)),
    cut=st.integers(0, 2000),
    flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6),
)
def test_damaged_images_render_or_fail_typed(fmt: str, cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(BASES[fmt])
    for position, byte in flips:
        data[position % len(data)] = byte
    assert_typed(bytes(data[: max(1, len(data) - cut)]))


def test_a_png_text_chunk_with_a_latin1_name_renders() -> None:
    """The fuzzed PNG of issue 11: libvips names the field png-comment-0-caf\\xe9, not UTF-8."""
    renditions = render(with_text_chunk(b"caf\xe9", b"cr\xe8me"), PRESETS)
    assert [r.preset.name for r in renditions] == ["sm", "md", "lg"]
