"""worker.runtime.fate: one reason registry, one observer counting and logging the consumer's
and the Lambda's."""

from __future__ import annotations

import inspect
from collections.abc import MutableMapping, Sequence
from typing import Any

from structlog.testing import capture_logs

from tests.unit.test_consumer_reliability import config, run_for
from tests.unit.test_lambda_batch import BUCKET, PRESETS, MemoryStore, fake_render, processor
from worker.aws.sqs import Message
from worker.core import errors
from worker.core.keys import KeyLayout
from worker.observability.telemetry import Metrics
from worker.runtime.batch import BatchRecord
from worker.runtime.consumer import Consumer
from worker.runtime.fate import REASONS, TIME_GUARD, UNEXPECTED, Reason
from worker.runtime.pipeline import Pipeline, PipelineConfig
from worker.testing import MemoryDlq, MemoryQueue, s3_event_body


def test_the_registry_names_every_error_reason_with_its_permanence() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.ThumbxError)]
    assert len(classes) > 15
    for cls in classes:
        assert REASONS[cls.reason] == Reason(cls.reason, cls.permanent), cls.__name__
    assert REASONS["corrupt_image"].permanent
    assert not REASONS["throttled"].permanent
    assert REASONS["unexpected"] is UNEXPECTED
    assert not UNEXPECTED.permanent
    assert REASONS["time_guard"] is TIME_GUARD


def body(*keys: str) -> str:
    return s3_event_body(BUCKET, *keys)


OBJECTS = {"input/good.jpg": b"good", "input/bad.jpg": b"corrupt"}
RECORD_SERIES = ("thumbx_records_total", "thumbx_records_succeeded_total", "thumbx_records_failed_total")


def record_counts(metrics: Metrics) -> dict[str, float]:
    return {name: metrics.count(name) for name in RECORD_SERIES}


def message_done(logs: Sequence[MutableMapping[str, Any]]) -> MutableMapping[str, Any]:
    [event] = [e for e in logs if e["event"] == "message_done"]
    return event


async def test_the_consumer_and_the_lambda_count_and_log_a_message_the_same_way() -> None:
    text = body("input/good.jpg", "input/bad.jpg")
    lambda_metrics, consumer_metrics = Metrics(), Metrics()
    lambda_dlq, consumer_dlq = MemoryDlq(), MemoryDlq()
    with capture_logs() as lambda_logs:
        await processor(MemoryStore(OBJECTS), lambda_dlq, metrics=lambda_metrics).process(
            [BatchRecord(text, message_id="m-1")]
        )
    pipeline = Pipeline(
        MemoryStore(OBJECTS), PipelineConfig(frozenset({BUCKET}), KeyLayout(), PRESETS), renderer=fake_render
    )
    queue = MemoryQueue([Message("m-1", "rh-1", text, 1)])
    consumer = Consumer(queue, pipeline, config(), metrics=consumer_metrics, dead_letters=consumer_dlq)
    with capture_logs() as consumer_logs:
        await run_for(consumer, lambda: queue.deleted == ["m-1"])

    expected = {
        "thumbx_records_total": 2,
        "thumbx_records_succeeded_total": 1,
        "thumbx_records_failed_total": 1,
    }
    assert record_counts(lambda_metrics) == expected
    assert record_counts(consumer_metrics) == expected
    assert lambda_metrics.count("thumbx_records_failed_total", reason="corrupt_image", kind="permanent") == 1
    assert lambda_metrics.count("thumbx_messages_dead_lettered_total") == 1
    assert consumer_metrics.count("thumbx_messages_dead_lettered_total") == 1
    assert [a["thumbx-reason"] for _, a in lambda_dlq.sent + consumer_dlq.sent] == ["corrupt_image"] * 2

    from_lambda, from_consumer = message_done(lambda_logs), message_done(consumer_logs)
    assert set(from_lambda) == set(from_consumer)
    assert from_lambda["message_id"] == from_consumer["message_id"] == "m-1"
    assert all("timings_ms" in r for r in from_lambda["records"] + from_consumer["records"])
    statuses = [("succeeded", "rendered"), ("permanent", "corrupt_image")]
    assert [(r["status"], r["reason"]) for r in from_lambda["records"]] == statuses
    assert [(r["status"], r["reason"]) for r in from_consumer["records"]] == statuses
    # the same fate, the consumer naming it in the queue's words
    assert (from_lambda["fate"], from_consumer["fate"]) == ("dead_lettered", "dead_letter")
