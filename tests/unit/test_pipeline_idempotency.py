"""Redelivered work: one HEAD, no download; outputs written marker-last; our own outputs refused."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from tests.support import jpeg_bytes
from worker.aws.s3 import ObjectHead, StoredObject
from worker.core.events import ObjectRef
from worker.core.keys import KeyLayout
from worker.core.presets import DEFAULT_PRESETS, Preset, parse_presets
from worker.imaging import DEFAULT_LIMITS, Limits, Rendition
from worker.runtime.pipeline import Pipeline, PipelineConfig

PRESETS = parse_presets(DEFAULT_PRESETS)


class FakeStore:
    def __init__(self, objects: dict[str, tuple[bytes, dict[str, str]]]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, str]] = []

    async def get(
        self, bucket: str, key: str, *, version_id: str | None = None, **_bounds: Any
    ) -> StoredObject:
        self.calls.append(("get", key))
        data, meta = self.objects[key]
        return StoredObject(data, etag=f"etag-{len(data)}", metadata=meta)

    async def head(self, bucket: str, key: str, *, missing_is_error: bool = False) -> ObjectHead | None:
        self.calls.append(("head", key))
        if key not in self.objects:
            return None
        data, meta = self.objects[key]
        return ObjectHead(etag=f"etag-{len(data)}", metadata=meta)

    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        await asyncio.sleep(0 if key.endswith("lg.jpg") else 0.01)  # the marker would win a race
        self.calls.append(("put", key))
        self.objects[key] = (data, dict(metadata))


def fake_render(data: bytes, presets: Sequence[Preset], limits: Limits = DEFAULT_LIMITS) -> list[Rendition]:
    return [Rendition(p, b"thumb-" + p.name.encode(), 1, 1) for p in presets]


def pipeline(store: FakeStore, presets: tuple[Preset, ...] = PRESETS) -> Pipeline:
    config = PipelineConfig(buckets=frozenset({"b"}), layout=KeyLayout(), presets=presets)
    return Pipeline(store, config, renderer=fake_render)  # type: ignore[arg-type]


async def test_second_delivery_costs_one_head_and_no_download() -> None:
    source = jpeg_bytes(64, 48)
    store = FakeStore({"input/a.jpg": (source, {})})
    ref = ObjectRef("b", "input/a.jpg", etag=f"etag-{len(source)}")
    first = await pipeline(store).process(ref)
    assert (first.status, first.reason) == ("succeeded", "rendered")
    puts = [key for op, key in store.calls if op == "put"]
    assert puts[-1] == "thumbnails/a.jpg/lg.jpg", "the marker (last preset) is written after the others"
    store.calls.clear()
    second = await pipeline(store).process(ref)
    assert (second.status, second.reason) == ("succeeded", "already_rendered")
    assert store.calls == [("head", "thumbnails/a.jpg/lg.jpg")]
    assert set(second.outputs) == set(first.outputs)


async def test_new_source_version_or_other_presets_render_again() -> None:
    source = jpeg_bytes(64, 48)
    store = FakeStore({"input/a.jpg": (source, {})})
    await pipeline(store).process(ObjectRef("b", "input/a.jpg", etag=f"etag-{len(source)}"))
    changed = await pipeline(store).process(ObjectRef("b", "input/a.jpg", etag="another-etag"))
    assert changed.reason == "rendered"
    other_presets = parse_presets("sm:128:webp:q=70,md:512:jpeg:q=80,lg:1024:jpeg:q=80")
    again = await pipeline(store, other_presets).process(
        ObjectRef("b", "input/a.jpg", etag=f"etag-{len(source)}")
    )
    assert again.reason == "rendered"
    no_etag = await pipeline(store).process(ObjectRef("b", "input/a.jpg"))
    assert no_etag.reason == "rendered", "nothing to compare with: render (writes are idempotent)"


async def test_our_own_output_under_the_input_prefix_is_refused() -> None:
    store = FakeStore({"input/copy.jpg": (b"x", {"thumbx-preset": "md"})})
    outcome = await pipeline(store).process(ObjectRef("b", "input/copy.jpg"))
    assert (outcome.status, outcome.reason) == ("ignored", "own_output")
    assert not [c for c in store.calls if c[0] == "put"]
