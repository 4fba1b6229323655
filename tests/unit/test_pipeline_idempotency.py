"""Redelivered work: one HEAD, no download; outputs written marker-last; our own outputs refused."""

from __future__ import annotations

import pytest

from tests.support import jpeg_bytes
from worker.core.events import ObjectRef
from worker.core.keys import KeyLayout
from worker.core.presets import DEFAULT_PRESETS, Preset, parse_presets
from worker.runtime.pipeline import Pipeline, PipelineConfig
from worker.testing import MemoryStore, static_render

pytestmark = pytest.mark.reliability

PRESETS = parse_presets(DEFAULT_PRESETS)


def marker_last_store(
    objects: dict[str, bytes], metadata: dict[str, dict[str, str]] | None = None
) -> MemoryStore:
    """Puts of the marker (lg) finish first unless the pipeline waits for the others: it would win a race."""
    return MemoryStore(
        objects, metadata=metadata, put_delay=lambda key: 0 if key.endswith("lg.jpg") else 0.01
    )


def pipeline(store: MemoryStore, presets: tuple[Preset, ...] = PRESETS) -> Pipeline:
    config = PipelineConfig(buckets=frozenset({"b"}), layout=KeyLayout(), presets=presets)
    return Pipeline(store, config, renderer=static_render)


async def test_second_delivery_costs_one_head_and_no_download() -> None:
    source = jpeg_bytes(64, 48)
    store = marker_last_store({"input/a.jpg": source})
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
    store = marker_last_store({"input/a.jpg": source})
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
    store = marker_last_store({"input/copy.jpg": b"x"}, {"input/copy.jpg": {"thumbx-preset": "md"}})
    outcome = await pipeline(store).process(ObjectRef("b", "input/copy.jpg"))
    assert (outcome.status, outcome.reason) == ("ignored", "own_output")
    assert not [c for c in store.calls if c[0] == "put"]
