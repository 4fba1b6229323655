"""The manifest and the event order in the pipeline, against an in-memory store with the real renderer."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from tests.support import jpeg_bytes
from tests.unit.test_pipeline_idempotency import marker_last_store
from worker.aws.s3 import ObjectHead
from worker.core import manifest
from worker.core.errors import KeyTooLong
from worker.core.events import ObjectRef
from worker.core.freshness import Wanted, verdict
from worker.core.keys import KeyLayout
from worker.core.presets import DEFAULT_PRESETS, parse_presets
from worker.runtime.pipeline import Pipeline, PipelineConfig
from worker.testing import MemoryStore

PRESETS = parse_presets(DEFAULT_PRESETS)
KEY = "input/a.jpg"
MANIFEST = "thumbnails/a.jpg/manifest.json"


def pipeline(store: MemoryStore, *, on: bool = True) -> Pipeline:
    config = PipelineConfig(buckets=frozenset({"b"}), layout=KeyLayout(), presets=PRESETS, manifest=on)
    return Pipeline(store, config)


def source_store() -> tuple[MemoryStore, str]:
    data = jpeg_bytes(300, 200)
    return marker_last_store({KEY: data}), f"etag-{len(data)}"


def puts(store: MemoryStore) -> list[str]:
    return [key for op, key in store.calls if op == "put"]


async def test_the_manifest_is_written_after_every_rendition() -> None:
    store, etag = source_store()
    outcome = await pipeline(store).process(ObjectRef("b", KEY, etag=etag))
    assert outcome.reason == "rendered"
    assert puts(store)[-1] == MANIFEST
    assert sorted(puts(store)[:-1]) == sorted(f"thumbnails/a.jpg/{p.name}.{p.extension}" for p in PRESETS)
    body, metadata = store.objects[MANIFEST], store.metadata[MANIFEST]
    doc = json.loads(body)
    assert doc["renditions"]["lg"] == {
        "key": "thumbnails/a.jpg/lg.jpg",
        "content_type": "image/jpeg",
        "width": 300,
        "height": 200,
        "bytes": len(store.objects["thumbnails/a.jpg/lg.jpg"]),
    }
    assert metadata["thumbx-preset"] == "manifest", "the loop guard recognises it as our own output"
    assert metadata[manifest.SCHEMA_METADATA] == "1"
    assert manifest.SCHEMA_METADATA not in store.metadata["thumbnails/a.jpg/lg.jpg"]


async def test_a_redelivery_heads_the_manifest_and_an_older_schema_renders_again() -> None:
    store, etag = source_store()
    await pipeline(store).process(ObjectRef("b", KEY, etag=etag))
    store.calls.clear()
    again = await pipeline(store).process(ObjectRef("b", KEY, etag=etag))
    assert again.reason == "already_rendered"
    assert store.calls == [("head", MANIFEST)]
    store.metadata[MANIFEST] |= {manifest.SCHEMA_METADATA: "0"}
    upgraded = await pipeline(store).process(ObjectRef("b", KEY, etag=etag))
    assert upgraded.reason == "rendered"
    assert store.metadata[MANIFEST][manifest.SCHEMA_METADATA] == "1"


async def test_with_manifests_off_the_last_preset_is_the_marker_and_no_manifest_is_written() -> None:
    store, etag = source_store()
    await pipeline(store, on=False).process(ObjectRef("b", KEY, etag=etag))
    assert MANIFEST not in store.objects
    assert puts(store)[-1] == "thumbnails/a.jpg/lg.jpg"


async def test_an_older_sequencer_is_stale_before_any_download() -> None:
    store, etag = source_store()
    await pipeline(store).process(ObjectRef("b", KEY, etag=etag, sequencer="0B"))
    store.calls.clear()
    with capture_logs() as logs:
        stale = await pipeline(store).process(ObjectRef("b", KEY, etag="older-etag", sequencer="0A"))
    assert (stale.status, stale.reason) == ("ignored", "stale_event")
    assert store.calls == [("head", MANIFEST)], "one HEAD, no download, no write"
    [logged] = [e for e in logs if e["event"] == "stale_event"]
    assert (logged["sequencer"], logged["rendered_sequencer"]) == ("0A", "0B")


async def test_a_newer_event_for_the_same_bytes_renders_so_the_newer_sequencer_is_recorded() -> None:
    store, etag = source_store()
    await pipeline(store).process(ObjectRef("b", KEY, etag=etag, sequencer="0A"))
    same = await pipeline(store).process(ObjectRef("b", KEY, etag=etag, sequencer="0A"))
    assert same.reason == "already_rendered"
    newer = await pipeline(store).process(ObjectRef("b", KEY, etag=etag, sequencer="0B"))
    assert newer.reason == "rendered"
    assert store.metadata[MANIFEST]["thumbx-source-sequencer"] == "0B"
    assert json.loads(store.objects[MANIFEST])["source"]["sequencer"] == "0B"


def test_manifest_bytes_are_deterministic_and_sorted() -> None:
    source = manifest.Source("input/é.jpg", '"abc"', None, "0A", "jpeg", 3, 2)
    entries = [manifest.RenditionEntry("sm", "thumbnails/é.jpg/sm.webp", "image/webp", 3, 2, 10)]
    doc = manifest.document(
        source, entries, thumbhash="AAAA", dominant_colour="#000000", presets_fingerprint="f" * 16
    )
    body = manifest.encode(doc)
    assert body == manifest.encode(json.loads(body))
    assert list(json.loads(body)) == sorted(json.loads(body))
    assert "é".encode() in body, "UTF-8, not escapes"
    assert json.loads(body)["source"]["etag"] == "abc"


def test_the_manifest_key_is_planned_against_s3s_key_limit() -> None:
    layout = KeyLayout()
    # short preset names: every rendition key fits, the manifest key (13 characters of name) does not
    key = "input/" + "x" * (1024 - len("thumbnails/") - len("/manifest.json") + 1)
    presets = parse_presets("a:64:png")
    assert all(len(p.key) <= 1024 for p in layout.plan(key, presets))
    with pytest.raises(KeyTooLong, match="1024"):
        layout.manifest_key(key)


@pytest.mark.parametrize(
    ("head", "recorded"),
    [
        (None, "missing"),
        (ObjectHead("m", {"thumbx-source-etag": "e1", "thumbx-manifest-schema": "1"}), "done"),
        (ObjectHead("m", {"thumbx-source-etag": "e1", "thumbx-manifest-schema": "0"}), "stale"),
        (ObjectHead("m", {"thumbx-source-etag": "e1"}), "stale"),
    ],
)
def test_backfill_reads_an_older_or_unmarked_manifest_as_stale(
    head: ObjectHead | None, recorded: str | None
) -> None:
    metadata = None if head is None else {**head.metadata, "thumbx-presets": "f" * 16}
    assert verdict(metadata, Wanted("e1", "f" * 16), manifest=True) == recorded
