"""The dead-letter queue: what is on it (``thumbx dlq list``) and moving it back (``thumbx dlq redrive``).

A dead letter is either a body the worker sent with ``thumbx-reason`` / ``thumbx-detail`` / ``thumbx-key`` /
``thumbx-failed-record-indexes`` attributes (a permanent failure), or a message SQS moved after the queue's
``maxReceiveCount`` (no thumbx attributes: reason ``redrive_policy``). Listing receives every message under
a short hold and then makes it visible again at once; nothing is deleted.

Redrive of everything (no ``--reason``, no ``--limit``) asks SQS to do the move (``StartMessageMoveTask``,
paced by SQS itself); where that is not available (emulators, an error) or with a filter, it receives a
batch, sends the matching bodies to the queue, deletes only what was sent, and releases the rest at the
end, paced to ``rate`` messages per second. Safe to re-run: what was moved is gone from the DLQ; a crash
between send and delete sends one body twice, which the worker absorbs (deterministic keys,
already-rendered skip).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from worker.aws.errors import mapped
from worker.core.events import ObjectRef, parse_body

POLICY_REASON = "redrive_policy"  # moved by SQS after maxReceiveCount: the worker attached no reason
OLD_INDEXES = "thumbx-failed-records"  # the attribute's name before it said what it holds (still read)
INDEXES = "thumbx-failed-record-indexes"
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    reason: str
    detail: str
    key: str
    receive_count: int
    sent_at: datetime | None
    failed_record_indexes: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)

    def age_seconds(self, now: datetime) -> float | None:
        return None if self.sent_at is None else max(0.0, (now - self.sent_at).total_seconds())

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "reason": self.reason,
            "key": self.key,
            "detail": self.detail,
            "receive_count": self.receive_count,
            "age_seconds": None if self.sent_at is None else round(self.age_seconds(now) or 0.0, 1),
            "sent_at": None if self.sent_at is None else self.sent_at.isoformat(),
            "failed_record_indexes": self.failed_record_indexes,
        }


def from_sqs(message: Mapping[str, Any]) -> DeadLetter:
    """A ReceiveMessage entry (with ``All`` message and system attributes) -> :class:`DeadLetter`."""
    attrs = {k: str(v.get("StringValue", "")) for k, v in message.get("MessageAttributes", {}).items()}
    system = message.get("Attributes", {})
    body = str(message.get("Body", ""))
    sent = system.get("SentTimestamp")
    key = attrs.get("thumbx-key", "")
    if not key or key == "-":
        refs = [item.key for item in parse_body(body) if isinstance(item, ObjectRef)]
        key = ", ".join(refs) if refs else "-"
    reason = attrs.get("thumbx-reason") or POLICY_REASON
    return DeadLetter(
        message_id=str(message["MessageId"]),
        receipt_handle=str(message["ReceiptHandle"]),
        body=body,
        reason=reason,
        detail=attrs.get("thumbx-detail", ""),
        key=key,
        receive_count=int(system.get("ApproximateReceiveCount", "1")),
        sent_at=None if sent is None else datetime.fromtimestamp(int(sent) / 1000, UTC),
        failed_record_indexes=attrs.get(INDEXES, attrs.get(OLD_INDEXES, "")),
        attributes=attrs,
    )


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def table(letters: Sequence[DeadLetter], now: datetime) -> str:
    """Aligned columns: reason, key, receive count, age, message id (pure)."""
    rows = [("reason", "key", "receives", "age", "message id")]
    rows += [
        (d.reason, d.key, str(d.receive_count), human_age(d.age_seconds(now)), d.message_id) for d in letters
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def _receive(sqs: Any, url: str, count: int, hold: int) -> list[dict[str, Any]]:
    with mapped(f"ReceiveMessage {url}"):
        response = await sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max(1, min(10, count)),
            WaitTimeSeconds=1,
            VisibilityTimeout=hold,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
    return list(response.get("Messages", []))


async def release(sqs: Any, url: str, letters: Sequence[DeadLetter]) -> None:
    """Make held messages visible again at once (visibility 0)."""
    for i in range(0, len(letters), 10):
        entries = [
            {"Id": str(n), "ReceiptHandle": d.receipt_handle, "VisibilityTimeout": 0}
            for n, d in enumerate(letters[i : i + 10])
        ]
        with mapped(f"ChangeMessageVisibilityBatch {url}"):
            await sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


async def peek(sqs: Any, dlq_url: str, *, limit: int = 1000, hold: int = 60) -> list[DeadLetter]:
    """Up to ``limit`` dead letters, each received once under ``hold`` seconds, then released."""
    found: list[DeadLetter] = []
    try:
        while len(found) < limit:
            got = await _receive(sqs, dlq_url, limit - len(found), hold)
            if not got:
                break
            found.extend(from_sqs(m) for m in got)
    finally:
        await release(sqs, dlq_url, found)
    return found


@dataclass
class RedriveResult:
    method: str  # "move-task" or "receive-send-delete"
    moved: int = 0
    kept: int = 0  # left on the DLQ: another reason than --reason
    failed: int = 0  # could not be sent (left on the DLQ)
    task: dict[str, Any] = field(default_factory=dict)
    note: str = ""


async def queue_arn(sqs: Any, url: str) -> str:
    with mapped(f"GetQueueAttributes {url}"):
        response = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(response["Attributes"]["QueueArn"])


async def redrive(
    sqs: Any,
    dlq_url: str,
    queue_url: str,
    *,
    reason: str | None = None,
    rate: float = 10.0,
    limit: int | None = None,
    hold: int = 300,
    sleep: Sleep = asyncio.sleep,
    poll_seconds: float = 2.0,
) -> RedriveResult:
    """Move dead letters back to ``queue_url``: all (move task where available) or those of ``reason``."""
    note = ""
    if reason is None and limit is None:
        source, destination = await queue_arn(sqs, dlq_url), await queue_arn(sqs, queue_url)
        try:
            started = await sqs.start_message_move_task(
                SourceArn=source,
                DestinationArn=destination,
                MaxNumberOfMessagesPerSecond=max(1, min(500, int(rate))),
            )
        except ClientError as exc:  # not offered here (moto: 500), not allowed, not a DLQ: move it ourselves
            error = exc.response.get("Error", {})
            note = (
                f"StartMessageMoveTask unavailable ({error.get('Code', 'error')}): moved message by message"
            )
        else:
            task = await _wait_for_task(sqs, source, str(started.get("TaskHandle", "")), sleep, poll_seconds)
            moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
            failed = 0 if task.get("Status") == "COMPLETED" else 1
            return RedriveResult("move-task", moved=moved, failed=failed, task=task)
    result = await _move_one_by_one(sqs, dlq_url, queue_url, reason, rate, limit, hold, sleep)
    result.note = note
    return result


async def _wait_for_task(
    sqs: Any, source_arn: str, handle: str, sleep: Sleep, poll_seconds: float
) -> dict[str, Any]:
    while True:
        response = await sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10)
        tasks = response.get("Results", [])
        task = next((t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else {})
        if task.get("Status") in ("COMPLETED", "FAILED", "CANCELLED") or not task:
            return dict(task)
        await sleep(poll_seconds)


async def _move_one_by_one(
    sqs: Any,
    dlq_url: str,
    queue_url: str,
    reason: str | None,
    rate: float,
    limit: int | None,
    hold: int,
    sleep: Sleep,
) -> RedriveResult:
    result = RedriveResult("receive-send-delete")
    held: list[DeadLetter] = []  # not ours to move, or not sent: released at the end
    pending: list[DeadLetter] = []
    try:
        while limit is None or result.moved < limit:
            room = 10 if limit is None else min(10, limit - result.moved)
            got = [from_sqs(m) for m in await _receive(sqs, dlq_url, room, hold)]
            if not got:
                break
            matching = [d for d in got if reason is None or d.reason == reason][:room]
            ids = {d.message_id for d in matching}
            others = [d for d in got if d.message_id not in ids]
            held.extend(others)
            result.kept += len(others)
            if not matching:
                continue
            started = time.monotonic()
            pending = matching  # released on any error below, so nothing stays hidden for `hold`
            sent, unsent = await _send(sqs, queue_url, matching)
            pending = unsent + sent
            held.extend(unsent)
            result.failed += len(unsent)
            await _delete(sqs, dlq_url, sent)
            pending = []
            result.moved += len(sent)
            pause = len(sent) / rate - (time.monotonic() - started)
            if pause > 0:
                await sleep(pause)
    finally:
        await release(sqs, dlq_url, [*held, *[d for d in pending if d not in held]])
    return result


async def _send(
    sqs: Any, queue_url: str, letters: Sequence[DeadLetter]
) -> tuple[list[DeadLetter], list[DeadLetter]]:
    entries = [{"Id": str(i), "MessageBody": d.body} for i, d in enumerate(letters)]
    with mapped(f"SendMessageBatch {queue_url}"):
        response = await sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    ok = {int(e["Id"]) for e in response.get("Successful", [])}
    return [d for i, d in enumerate(letters) if i in ok], [d for i, d in enumerate(letters) if i not in ok]


async def _delete(sqs: Any, dlq_url: str, letters: Sequence[DeadLetter]) -> None:
    if not letters:
        return
    entries = [{"Id": str(i), "ReceiptHandle": d.receipt_handle} for i, d in enumerate(letters)]
    with mapped(f"DeleteMessageBatch {dlq_url}"):
        await sqs.delete_message_batch(QueueUrl=dlq_url, Entries=entries)
