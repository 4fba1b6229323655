"""worker.runtime.batch: per-record fates, the time guard, bounded concurrency, FIFO order,
the reported ids."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from worker.aws.s3 import ObjectHead, StoredObject
from worker.core.errors import ConfigError, CorruptImage, ServiceUnavailable
from worker.core.keys import KeyLayout
from worker.core.presets import Preset, parse_presets
from worker.imaging import Limits, Rendition
from worker.observability.telemetry import Metrics
from worker.runtime.batch import (
    BatchProcessor,
    BatchRecord,
    BatchSettings,
    UnreportableFailure,
)
from worker.runtime.pipeline import Pipeline, PipelineConfig
from worker.testing import MemoryDlq, s3_event_body

BUCKET = "images"
PRESETS = parse_presets("sm:64:webp")


class MemoryStore:
    def __init__(self, objects: Mapping[str, bytes]) -> None:
        self.objects = dict(objects)
        self.active = 0
        self.peak = 0

    async def get(
        self, bucket: str, key: str, *, version_id: str | None = None, **_bounds: Any
    ) -> StoredObject:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(0.01)
            if key not in self.objects:  # stands for any transient failure (a 5xx, a timeout)
                raise ServiceUnavailable(f"GetObject {key}: 503")
            return StoredObject(self.objects[key], etag="e")
        finally:
            self.active -= 1

    async def head(
        self, bucket: str, key: str, *, missing_is_error: bool = False, version_id: str | None = None
    ) -> ObjectHead | None:
        if not missing_is_error:
            return None  # outputs never look rendered
        if key not in self.objects:
            raise ServiceUnavailable(f"HeadObject {key}: 503")
        return ObjectHead(etag="e", size=len(self.objects[key]))

    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        self.objects[key] = data


def fake_render(data: bytes, presets: Sequence[Preset], limits: Limits) -> list[Rendition]:
    if data == b"corrupt":
        raise CorruptImage("cannot decode: not a JPEG")
    return [Rendition(p, b"thumb:" + data, 1, 1) for p in presets]


def s3_body(*keys: str) -> str:
    return s3_event_body(BUCKET, *keys)


def processor(
    store: MemoryStore,
    dlq: MemoryDlq | None,
    concurrency: int = 4,
    margin: int = 1000,
    metrics: Metrics | None = None,
) -> BatchProcessor:
    pipeline = Pipeline(
        store, PipelineConfig(frozenset({BUCKET}), KeyLayout(), PRESETS), renderer=fake_render
    )
    return BatchProcessor(pipeline, BatchSettings(concurrency, margin), dead_letters=dlq, metrics=metrics)


async def test_each_record_gets_its_own_fate() -> None:
    store = MemoryStore({"input/good.jpg": b"good", "input/bad.jpg": b"corrupt"})
    dlq = MemoryDlq()
    records = [
        BatchRecord(s3_body("input/good.jpg"), message_id="m-good"),
        BatchRecord(s3_body("input/later.jpg"), message_id="m-missing"),
        BatchRecord(s3_body("input/bad.jpg"), message_id="m-bad"),
        BatchRecord(json.dumps({"Event": "s3:TestEvent"}), message_id="m-test"),
    ]
    report = await processor(store, dlq).process(records)
    assert [r.fate for r in report.results] == ["done", "retry", "dead_lettered", "done"]
    assert report.item_failures() == [{"itemIdentifier": "m-missing"}]
    assert store.objects["thumbnails/good.jpg/sm.webp"] == b"thumb:good"
    [(body, attributes)] = dlq.sent
    assert body == records[2].body
    assert attributes["thumbx-reason"] == "corrupt_image"
    assert attributes["thumbx-key"] == "input/bad.jpg"
    assert attributes["thumbx-source-message-id"] == "m-bad"


async def test_message_latency_lands_in_the_histogram_the_service_exports() -> None:
    store = MemoryStore({"input/good.jpg": b"good"})
    metrics = Metrics()
    await processor(store, None, metrics=metrics).process(
        [BatchRecord(s3_body("input/good.jpg"), message_id="m1")]
    )
    count, seconds = metrics.observations("thumbx_message_seconds")
    assert count == 1
    assert 0 < seconds[0] < 60, "seconds, as the /metrics histogram is labelled, not milliseconds"


async def test_dead_letter_attributes_name_the_failed_records_of_a_multi_record_body() -> None:
    store = MemoryStore({"input/ok.jpg": b"ok", "input/bad.jpg": b"corrupt"})
    dlq = MemoryDlq()
    body = s3_body("input/ok.jpg", "input/bad.jpg")
    report = await processor(store, dlq).process([BatchRecord(body, message_id="m1")])
    assert report.item_failures() == []
    [(sent, attributes)] = dlq.sent
    assert sent == body
    assert attributes == {
        "thumbx-reason": "corrupt_image",
        "thumbx-detail": "cannot decode: not a JPEG",
        "thumbx-key": "input/bad.jpg",
        "thumbx-failed-record-indexes": "1",
        "thumbx-records": "2",
        "thumbx-source-message-id": "m1",
        "thumbx-receive-count": "1",
    }


async def test_a_record_with_any_transient_reference_is_retried_not_dead_lettered() -> None:
    store = MemoryStore({"input/bad.jpg": b"corrupt"})
    dlq = MemoryDlq()
    report = await processor(store, dlq).process(
        [BatchRecord(s3_body("input/bad.jpg", "input/later.jpg"), message_id="m1")]
    )
    assert report.item_failures() == [{"itemIdentifier": "m1"}]
    assert dlq.sent == []


async def test_permanent_failure_is_retried_when_the_dlq_cannot_take_it() -> None:
    report = await processor(MemoryStore({"input/bad.jpg": b"corrupt"}), MemoryDlq(fail=True)).process(
        [BatchRecord(s3_body("input/bad.jpg"), message_id="m1")]
    )
    assert report.item_failures() == [{"itemIdentifier": "m1"}]
    assert report.results[0].reason == "service_unavailable"


async def test_permanent_failure_without_a_dlq_is_left_to_the_redrive_policy() -> None:
    report = await processor(MemoryStore({"input/bad.jpg": b"corrupt"}), None).process(
        [BatchRecord(s3_body("input/bad.jpg"), message_id="m1")]
    )
    assert report.item_failures() == [{"itemIdentifier": "m1"}]


async def test_time_guard_reports_records_it_did_not_start() -> None:
    store = MemoryStore({f"input/{i}.jpg": b"img" for i in range(4)})
    clock = iter([5000, 5000, 900, 900])
    records = [BatchRecord(s3_body(f"input/{i}.jpg"), message_id=f"m{i}") for i in range(4)]
    report = await processor(store, MemoryDlq(), concurrency=1).process(records, lambda: next(clock))
    assert [r.fate for r in report.results] == ["done", "done", "unstarted", "unstarted"]
    assert report.item_failures() == [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]
    assert "thumbnails/2.jpg/sm.webp" not in store.objects, "an unstarted record wrote nothing"


async def test_concurrency_is_bounded() -> None:
    store = MemoryStore({f"input/{i}.jpg": b"img" for i in range(12)})
    records = [BatchRecord(s3_body(f"input/{i}.jpg"), message_id=f"m{i}") for i in range(12)]
    report = await processor(store, MemoryDlq(), concurrency=3).process(records)
    assert report.counts == {"done": 12}
    assert store.peak == 3


async def test_fifo_batches_stop_at_the_first_record_to_retry() -> None:
    store = MemoryStore({"input/a.jpg": b"a", "input/c.jpg": b"c"})
    records = [BatchRecord(s3_body(f"input/{k}.jpg"), message_id=k) for k in "abc"]
    report = await processor(store, MemoryDlq()).process(records, ordered=True)
    assert report.item_failures() == [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]
    assert "thumbnails/c.jpg/sm.webp" not in store.objects


async def test_a_record_to_retry_without_a_message_id_fails_the_whole_batch() -> None:
    report = await processor(MemoryStore({}), MemoryDlq()).process([BatchRecord(s3_body("input/x.jpg"))])
    with pytest.raises(UnreportableFailure):
        report.item_failures()


async def test_duplicate_message_ids_are_reported_once() -> None:
    records = [BatchRecord(s3_body("input/x.jpg"), message_id="same") for _ in range(2)]
    report = await processor(MemoryStore({}), MemoryDlq()).process(records)
    assert report.item_failures() == [{"itemIdentifier": "same"}]


def test_safety_margin_setting_is_validated_with_the_variable_named() -> None:
    assert BatchSettings.from_env({}, 4) == BatchSettings(4)
    assert BatchSettings.from_env({"THUMBX_LAMBDA_SAFETY_MS": "2500"}, 2).safety_margin_ms == 2500
    with pytest.raises(ConfigError, match="THUMBX_LAMBDA_SAFETY_MS"):
        BatchSettings.from_env({"THUMBX_LAMBDA_SAFETY_MS": "soon"}, 4)


async def test_a_bug_while_handling_one_record_retries_it_and_spares_its_neighbours() -> None:
    class BrokenDlq(MemoryDlq):
        async def send(self, body: str, attributes: dict[str, str] | None = None) -> str:
            raise RuntimeError("bug")

    store = MemoryStore({"input/good.jpg": b"good", "input/bad.jpg": b"corrupt"})
    records = [
        BatchRecord(s3_body("input/bad.jpg"), message_id="m-bad"),
        BatchRecord(s3_body("input/good.jpg"), message_id="m-good"),
    ]
    report = await processor(store, BrokenDlq()).process(records)
    assert [(r.fate, r.reason) for r in report.results] == [
        ("retry", "unexpected_RuntimeError"),
        ("done", ""),
    ]
    assert report.item_failures() == [{"itemIdentifier": "m-bad"}]
