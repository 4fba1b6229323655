"""Lifecycle edges without a server: the last-receive rule, start-up backoff, logs that stay JSON."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import sys
from collections.abc import Sequence

import aiohttp
import pytest

import worker.observability.telemetry as observability
from tests.unit.test_consumer_reliability import FakePipeline, config, run_for
from worker.aws.errors import mapped
from worker.aws.sqs import BatchResult, Message
from worker.aws.startup import StartupAborted, StartupPolicy, StartupState, until_ready
from worker.core.errors import CredentialsUnavailable, ServiceUnavailable
from worker.core.redrive import RedrivePolicy, parse_redrive
from worker.runtime.consumer import Consumer
from worker.runtime.dead_letter import dead_letter_attributes, final_fate
from worker.runtime.pipeline import Outcome
from worker.testing import MemoryDlq, MemoryQueue, s3_message

pytestmark = pytest.mark.reliability

REDRIVE = RedrivePolicy("arn:aws:sqs:us-east-1:1:dlq", 3)


def test_redrive_policy_is_parsed_from_the_queue_attribute() -> None:
    raw = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:dlq", "maxReceiveCount": "3"})
    assert parse_redrive(raw) == REDRIVE
    assert parse_redrive(None) is None
    assert parse_redrive('{"maxReceiveCount": 3}') is None
    assert parse_redrive('{"deadLetterTargetArn": "x", "maxReceiveCount": 0}') is None


@pytest.mark.parametrize(
    ("status", "receive_count", "fate"),
    [
        ("transient", 1, "retry"),
        ("transient", 2, "retry"),
        ("transient", 3, "dead_lettered"),  # SQS would move it on the next receive, without a reason
        ("transient", 7, "dead_lettered"),
        ("permanent", 1, "dead_lettered"),
        ("succeeded", 3, "done"),
    ],
)
def test_a_failure_on_the_last_receive_is_dead_lettered(status: str, receive_count: int, fate: str) -> None:
    outcome = Outcome(status, "object_missing" if status == "transient" else "x", key="k")  # type: ignore[arg-type]
    assert final_fate([outcome], receive_count, REDRIVE) == fate
    assert final_fate([outcome], receive_count, None) == ("retry" if status == "transient" else fate)


def test_the_last_receive_carries_the_transient_reason_and_its_receive_count() -> None:
    outcomes = [
        Outcome("succeeded", "rendered", key="a"),
        Outcome("transient", "object_missing", key="b", detail="GetObject: missing or not readable (403)"),
    ]
    attributes = dead_letter_attributes("m-1", outcomes, receive_count=3)
    assert attributes["thumbx-reason"] == "object_missing"
    assert attributes["thumbx-detail"] == "GetObject: missing or not readable (403)"
    assert attributes["thumbx-failed-record-indexes"] == "1"
    assert attributes["thumbx-receive-count"] == "3"


class ExplodingPipeline(FakePipeline):
    async def process(self, item: object) -> Outcome:
        raise RecursionError("maximum recursion depth exceeded")


async def test_a_bug_on_the_last_receive_is_dead_lettered_as_unexpected() -> None:
    queue = MemoryQueue([s3_message("early", receive_count=1), s3_message("last", receive_count=3)])
    dlq = MemoryDlq()
    consumer = Consumer(queue, ExplodingPipeline(), config(), dead_letters=dlq, redrive=REDRIVE)  # type: ignore[arg-type]
    await run_for(consumer, lambda: bool(dlq.sent) and bool(queue.deleted))
    [(_body, attributes)] = dlq.sent
    assert attributes["thumbx-reason"] == "unexpected"
    assert "RecursionError" in attributes["thumbx-detail"]
    assert queue.deleted == ["id-last"], "the earlier receive is left to come back"


async def test_startup_retries_with_capped_backoff_until_the_step_works() -> None:
    calls = 0

    async def assume() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise CredentialsUnavailable("cannot assume arn:aws:iam::2:role/ThumbXRole: AccessDenied")
        return "session"

    state = StartupState()
    policy = StartupPolicy(max_backoff=0.05)
    assert await until_ready("assume_role", assume, policy=policy, state=state) == "session"
    assert calls == 3
    assert state.attempts == 3
    assert "AccessDenied" in (state.waiting_for or "")
    delays = [StartupPolicy(max_backoff=30).delay(n) for n in range(1, 12)]
    assert all(0.25 <= d <= 30 for d in delays)
    assert max(delays[-3:]) > 8, "grows towards the cap"


async def test_startup_stops_waiting_when_told_to() -> None:
    async def never() -> None:
        raise CredentialsUnavailable("no STS")

    stop = asyncio.Event()
    waiting = asyncio.create_task(
        until_ready(
            "assume_role", never, policy=StartupPolicy(max_backoff=30), state=StartupState(), stop=stop
        )
    )
    await asyncio.sleep(0.1)
    stop.set()
    with pytest.raises(StartupAborted):
        await asyncio.wait_for(waiting, 5)


def test_aiohttp_errors_from_a_dropped_connection_are_typed_as_transient() -> None:
    with pytest.raises(ServiceUnavailable, match="ClientPayloadError"), mapped("GetObject s3://b/k"):
        raise aiohttp.ClientPayloadError("Response payload is not completed")


class DroppingQueue(MemoryQueue):
    async def delete(self, messages: Sequence[Message]) -> BatchResult:
        raise RuntimeError("an unmapped error from the HTTP stack")


async def _consume_with_failing_deletes() -> None:
    queue = DroppingQueue([s3_message(f"k{i}") for i in range(3)])
    pipeline = FakePipeline()
    consumer = Consumer(queue, pipeline, config(delete_batch_delay=0.01))  # type: ignore[arg-type]
    await run_for(consumer, lambda: len(pipeline.started) == 3)


async def test_a_failing_delete_leaves_no_unretrieved_task_exception() -> None:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    await _consume_with_failing_deletes()
    await asyncio.sleep(0.05)
    gc.collect()  # "Task exception was never retrieved" is reported when the task is collected
    await asyncio.sleep(0)
    assert [c.get("message") for c in unhandled] == []


def test_stdlib_pyvips_and_asyncio_logs_render_as_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    observability.configure_logging("json", "info")
    try:
        logging.getLogger("pyvips").warning("VIPS: VipsJpeg: premature end of JPEG file")
        try:
            raise OSError("connection reset")
        except OSError as exc:
            error = exc
        loop = asyncio.new_event_loop()
        try:
            observability.log_loop_exception(
                loop, {"message": "Task exception was never retrieved", "exception": error}
            )
        finally:
            loop.close()
    finally:
        logging.getLogger().handlers = []
    lines = stream.getvalue().splitlines()
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    assert events[0]["logger"] == "pyvips"
    assert "premature end" in events[0]["event"]
    assert events[1]["event"] == "asyncio_unhandled_exception"
    assert "connection reset" in events[1]["exception"]


async def test_the_lambda_batch_dead_letters_a_bug_on_the_last_receive_only() -> None:
    from worker.runtime.batch import BatchProcessor, BatchRecord, BatchSettings

    async def redrive() -> RedrivePolicy:
        return REDRIVE

    dlq = MemoryDlq()
    processor = BatchProcessor(ExplodingPipeline(), BatchSettings(), dead_letters=dlq, redrive=redrive)  # type: ignore[arg-type]
    body = json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}},
                }
            ]
        }
    )
    report = await processor.process(
        [BatchRecord(body, "m-early", receive_count=1), BatchRecord(body, "m-last", receive_count=3)]
    )
    assert report.item_failures() == [{"itemIdentifier": "m-early"}]
    [(_body, attributes)] = dlq.sent
    assert (attributes["thumbx-reason"], attributes["thumbx-source-message-id"]) == ("unexpected", "m-last")
