"""worker.ops.dlq without a server: the move-task path (moto has none), pacing,
and how a dead letter reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from worker.ops import dlq

DLQ = "https://sqs.eu-west-1.amazonaws.com/222222222222/thumbx-jobs-dlq"
QUEUE = "https://sqs.eu-west-1.amazonaws.com/222222222222/thumbx-jobs"


def _message(n: int, reason: str | None = "corrupt_image", **attributes: str) -> dict[str, Any]:
    attrs = dict(attributes)
    if reason:
        attrs["thumbx-reason"] = reason
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "b"}, "object": {"key": f"input/{n}.jpg"}},
    }
    return {
        "MessageId": f"m{n}",
        "ReceiptHandle": f"h{n}",
        "Body": json.dumps({"Records": [record]}),
        "Attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1764000000000"},
        "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()},
    }


class FakeSqs:
    """Records calls; serves ``messages`` once each from the DLQ."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = list(messages)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[str] = []
        self.deleted: list[str] = []
        self.released: list[str] = []

    async def get_queue_attributes(self, **kw: Any) -> dict[str, Any]:
        name = kw["QueueUrl"].rsplit("/", 1)[1]
        return {"Attributes": {"QueueArn": f"arn:aws:sqs:eu-west-1:222222222222:{name}"}}

    async def start_message_move_task(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("start", kw))
        return {"TaskHandle": "task-1"}

    async def list_message_move_tasks(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("list", kw))
        polls = sum(1 for c in self.calls if c[0] == "list")
        status = "COMPLETED" if polls >= 2 else "RUNNING"
        return {
            "Results": [{"TaskHandle": "task-1", "Status": status, "ApproximateNumberOfMessagesMoved": 7}]
        }

    async def receive_message(self, **kw: Any) -> dict[str, Any]:
        batch, self.messages = (
            self.messages[: kw["MaxNumberOfMessages"]],
            self.messages[kw["MaxNumberOfMessages"] :],
        )
        return {"Messages": batch}

    async def send_message_batch(self, **kw: Any) -> dict[str, Any]:
        self.sent += [e["MessageBody"] for e in kw["Entries"]]
        return {"Successful": [{"Id": e["Id"]} for e in kw["Entries"]]}

    async def delete_message_batch(self, **kw: Any) -> dict[str, Any]:
        self.deleted += [e["ReceiptHandle"] for e in kw["Entries"]]
        return {}

    async def change_message_visibility_batch(self, **kw: Any) -> dict[str, Any]:
        self.released += [e["ReceiptHandle"] for e in kw["Entries"] if e["VisibilityTimeout"] == 0]
        return {}


async def test_redrive_of_everything_uses_a_move_task_and_waits_for_it() -> None:
    sqs = FakeSqs([])
    naps: list[float] = []

    async def nap(seconds: float) -> None:
        naps.append(seconds)

    result = await dlq.redrive(sqs, DLQ, QUEUE, rate=25, sleep=nap, poll_seconds=3)

    assert sqs.calls[0] == (
        "start",
        {
            "SourceArn": "arn:aws:sqs:eu-west-1:222222222222:thumbx-jobs-dlq",
            "DestinationArn": "arn:aws:sqs:eu-west-1:222222222222:thumbx-jobs",
            "MaxNumberOfMessagesPerSecond": 25,
        },
    )
    assert (result.method, result.moved, result.failed) == ("move-task", 7, 0)
    assert naps == [3]  # polled until COMPLETED


async def test_redrive_by_reason_is_paced_and_releases_the_others() -> None:
    messages = [_message(n, "corrupt_image" if n % 2 else "unsupported_format") for n in range(24)]
    sqs = FakeSqs(messages)
    naps: list[float] = []

    async def nap(seconds: float) -> None:
        naps.append(seconds)

    result = await dlq.redrive(sqs, DLQ, QUEUE, reason="corrupt_image", rate=2, sleep=nap)

    assert (result.moved, result.kept, result.failed) == (12, 12, 0)
    assert sqs.deleted == [f"h{n}" for n in range(1, 24, 2)]
    assert sorted(sqs.released) == sorted(f"h{n}" for n in range(0, 24, 2))
    assert [json.loads(b)["Records"][0]["s3"]["object"]["key"] for b in sqs.sent] == [
        f"input/{n}.jpg" for n in range(1, 24, 2)
    ]
    assert naps == pytest.approx([2.5, 2.5, 1.0], abs=0.2)  # 5, 5 and 2 moved per batch at 2/s
    assert not [c for c in sqs.calls if c[0] == "start"]  # a reason filter never starts a move task


async def test_a_limit_moves_no_more() -> None:
    sqs = FakeSqs([_message(n) for n in range(15)])

    async def nap(_: float) -> None:
        return None

    result = await dlq.redrive(sqs, DLQ, QUEUE, limit=4, sleep=nap)
    assert result.moved == 4
    assert sqs.deleted == ["h0", "h1", "h2", "h3"]
    assert sqs.released == []  # only as many received as may be moved
    assert len(sqs.messages) == 11


def test_a_dead_letter_reads_its_attributes_and_the_old_index_name() -> None:
    letter = dlq.from_sqs(_message(1, "corrupt_image", **{"thumbx-failed-records": "0,2"}))
    assert (letter.reason, letter.key, letter.receive_count) == ("corrupt_image", "input/1.jpg", 3)
    assert letter.failed_record_indexes == "0,2"
    moved = dlq.from_sqs(_message(2, None))
    assert (moved.reason, moved.key) == ("redrive_policy", "input/2.jpg")
    assert moved.sent_at == datetime(2025, 11, 24, 16, 0, tzinfo=UTC)


def test_the_table_lines_up_and_ages_read_as_humans_say_them() -> None:
    letters = [dlq.from_sqs(_message(1)), dlq.from_sqs(_message(22, "unsupported_format"))]
    sent_at = letters[0].sent_at
    assert sent_at is not None
    now = sent_at + timedelta(hours=5, minutes=10)
    assert dlq.table(letters, now).splitlines() == [
        "reason              key           receives  age  message id",
        "------------------  ------------  --------  ---  ----------",
        "corrupt_image       input/1.jpg   3         5h   m1",
        "unsupported_format  input/22.jpg  3         5h   m22",
    ]
    assert [dlq.human_age(s) for s in (None, 59, 61, 7200, 3 * 86400)] == ["-", "59s", "1m", "2h", "3d"]
