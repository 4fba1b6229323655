"""SQS receive / delete / change-visibility / send behind a small interface."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.aws.errors import mapped
from worker.core.redrive import RedrivePolicy, parse_redrive


@dataclass(frozen=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResult:
    """Ids that the batch call could not handle (the rest succeeded)."""

    failed: Mapping[str, str] = field(default_factory=dict)


class MessageQueue(Protocol):
    async def receive(
        self, max_messages: int, wait_seconds: int, *, visibility_timeout: int | None = None
    ) -> list[Message]: ...

    async def delete(self, messages: Sequence[Message]) -> BatchResult: ...

    async def change_visibility(self, messages: Sequence[Message], timeout: int) -> BatchResult: ...


class SqsQueue:
    """A :class:`MessageQueue` over an aiobotocore SQS client (batches of up to 10)."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self.url = queue_url

    async def receive(
        self, max_messages: int, wait_seconds: int, *, visibility_timeout: int | None = None
    ) -> list[Message]:
        params: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": max(1, min(10, max_messages)),
            "WaitTimeSeconds": wait_seconds,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount", "SentTimestamp"],
            "MessageAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            # Said explicitly so the heartbeat knows when each message would reappear.
            params["VisibilityTimeout"] = visibility_timeout
        with mapped(f"ReceiveMessage {self.url}"):
            response = await self._sqs.receive_message(**params)
        return [
            Message(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m.get("Body", ""),
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                attributes=dict(m.get("Attributes", {})),
            )
            for m in response.get("Messages", [])
        ]

    async def delete(self, messages: Sequence[Message]) -> BatchResult:
        failed: dict[str, str] = {}
        for chunk in _chunks(messages):
            entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)]
            with mapped(f"DeleteMessageBatch {self.url}"):
                response = await self._sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
            failed.update(_failures(chunk, response))
        return BatchResult(failed)

    async def change_visibility(self, messages: Sequence[Message], timeout: int) -> BatchResult:
        failed: dict[str, str] = {}
        for chunk in _chunks(messages):
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": timeout}
                for i, m in enumerate(chunk)
            ]
            with mapped(f"ChangeMessageVisibilityBatch {self.url}"):
                response = await self._sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
            failed.update(_failures(chunk, response))
        return BatchResult(failed)

    async def redrive_policy(self) -> RedrivePolicy | None:
        """The queue's RedrivePolicy (GetQueueAttributes); None when it has none."""
        with mapped(f"GetQueueAttributes {self.url}"):
            response = await self._sqs.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["RedrivePolicy"]
            )
        return parse_redrive(response.get("Attributes", {}).get("RedrivePolicy"))

    async def send(self, body: str, attributes: Mapping[str, str] | None = None) -> str:
        attrs = {
            name: {"DataType": "String", "StringValue": sqs_text(value)[:1024]}
            for name, value in (attributes or {}).items()
        }
        with mapped(f"SendMessage {self.url}"):
            response = await self._sqs.send_message(
                QueueUrl=self.url, MessageBody=body, MessageAttributes=attrs
            )
        return str(response["MessageId"])


_SQS_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sqs_text(text: str) -> str:
    """``text`` with every character SQS refuses in a message (control characters, lone surrogates from
    an event's ``\\ud800``, U+FFFE/U+FFFF) written as a ``\\xNN`` / ``\\uNNNN`` escape."""
    return _SQS_INVALID.sub(lambda m: ascii(m.group())[1:-1], text)


def _chunks(messages: Sequence[Message], size: int = 10) -> list[Sequence[Message]]:
    return [messages[i : i + size] for i in range(0, len(messages), size)]


def _failures(chunk: Sequence[Message], response: Mapping[str, Any]) -> dict[str, str]:
    return {chunk[int(f["Id"])].message_id: str(f.get("Code", "failed")) for f in response.get("Failed", [])}
