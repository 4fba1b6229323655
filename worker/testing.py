"""In-memory stand-ins for the worker's boundaries, for tests and benchmarks (no AWS, no pytest).

Each satisfies the Protocol the runtime codes against and records what it was asked to do, so a test
asserts on the calls a user would see (messages deleted, objects written, dead letters sent):

- :class:`MemoryQueue`: a :class:`worker.aws.sqs.MessageQueue` over a list.
- :class:`MemoryStore`: a :class:`worker.aws.s3.ObjectStore` over a dict.
- :class:`MemoryDlq`: a :class:`worker.runtime.dead_letter.DeadLetterSink` that keeps what it is sent.
- :func:`static_render`: a :data:`worker.runtime.pipeline.Renderer` that writes ``thumb-<preset>``
  without libvips.
- :class:`ManualClock`: a monotonic clock that moves only when told (``Consumer(clock=...)``,
  ``Backfill(clock=...)``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from worker.aws.s3 import ObjectHead, StoredObject
from worker.aws.sqs import BatchResult, Message
from worker.core.errors import CorruptImage, ObjectMissing, ServiceUnavailable
from worker.core.presets import Preset
from worker.imaging import DEFAULT_LIMITS, Limits, Rendition

__all__ = [
    "CORRUPT",
    "ManualClock",
    "MemoryDlq",
    "MemoryQueue",
    "MemoryStore",
    "s3_event_body",
    "s3_message",
    "static_render",
]

CORRUPT = b"corrupt"  # a source :func:`static_render` refuses as libvips would refuse a broken file


class ManualClock:
    """A ``Callable[[], float]`` clock: reads ``now``; :meth:`advance` moves it forward."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a monotonic clock does not go back")
        self.now += seconds
        return self.now


def s3_event_body(bucket: str, *keys: str) -> str:
    """The body of an S3 ``ObjectCreated:Put`` notification for ``keys``."""
    records = [
        {
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
        }
        for key in keys
    ]
    return json.dumps({"Records": records})


def s3_message(key: str, bucket: str = "b", receive_count: int = 1) -> Message:
    """A queue message ``id-<key>`` (receipt handle ``rh-<key>``) notifying one upload."""
    return Message(f"id-{key}", f"rh-{key}", s3_event_body(bucket, key), receive_count)


class MemoryQueue:
    """A MessageQueue over a list: ``receive`` pops from ``pending``; deletes and visibility changes are
    recorded (``deleted`` message ids, ``visibility`` as ``(ids, timeout)``) and always succeed.

    An empty receive sleeps ``idle_seconds`` (a short long poll); ``delete_delay`` holds each delete call.
    ``record=False`` keeps only the counts (long benchmark runs, where the lists would read as a leak).
    """

    def __init__(
        self, messages: Sequence[Message] = (), *, idle_seconds: float = 0.02, record: bool = True
    ) -> None:
        self.pending = list(messages)
        self.idle_seconds = idle_seconds
        self.record = record
        self.receives: list[int] = []  # max_messages of every receive call
        self.deleted: list[str] = []
        self.visibility: list[tuple[list[str], int]] = []
        self.delete_delay = 0.0
        self.delete_calls = 0

    async def receive(
        self, max_messages: int, wait_seconds: int, *, visibility_timeout: int | None = None
    ) -> list[Message]:
        if self.record:
            self.receives.append(max_messages)
        if not self.pending:
            await asyncio.sleep(self.idle_seconds)
            return []
        batch, self.pending = self.pending[:max_messages], self.pending[max_messages:]
        return batch

    async def delete(self, messages: Sequence[Message]) -> BatchResult:
        self.delete_calls += 1
        await asyncio.sleep(self.delete_delay)
        if self.record:
            self.deleted.extend(m.message_id for m in messages)
        return BatchResult()

    async def change_visibility(self, messages: Sequence[Message], timeout: int) -> BatchResult:
        if self.record:
            self.visibility.append(([m.message_id for m in messages], timeout))
        return BatchResult()


class MemoryStore:
    """An ObjectStore over ``objects`` (key -> bytes) and ``metadata`` (key -> user metadata), one bucket
    namespace for all buckets. ETags are ``etag-<size>``. Every call is logged in ``calls`` as
    ``(op, key)`` with op ``get``, ``head``, ``head-source`` (a HEAD of a source: missing raises
    :class:`ObjectMissing`, as S3Store does) or ``put``.

    ``record=False`` logs no calls and drops what is put, counting its bytes in ``written`` only (long
    benchmark runs);
    ``put_delay(key)`` gives the seconds a put of ``key`` takes (to let writes race).
    """

    def __init__(
        self,
        objects: Mapping[str, bytes] | None = None,
        *,
        metadata: Mapping[str, Mapping[str, str]] | None = None,
        record: bool = True,
        put_delay: Callable[[str], float] | None = None,
    ) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self.metadata: dict[str, dict[str, str]] = {k: dict(v) for k, v in (metadata or {}).items()}
        self.calls: list[tuple[str, str]] = []
        self.written = 0
        self.record = record
        self._put_delay = put_delay

    def _log(self, op: str, key: str) -> None:
        if self.record:
            self.calls.append((op, key))

    def _etag(self, key: str) -> str:
        return f"etag-{len(self.objects[key])}"

    async def get(
        self, bucket: str, key: str, *, version_id: str | None = None, **_bounds: Any
    ) -> StoredObject:
        self._log("get", key)
        if key not in self.objects:
            raise ObjectMissing(f"GetObject {key}: 404")
        return StoredObject(self.objects[key], etag=self._etag(key), metadata=self.metadata.get(key, {}))

    async def head(
        self, bucket: str, key: str, *, missing_is_error: bool = False, version_id: str | None = None
    ) -> ObjectHead | None:
        self._log("head-source" if missing_is_error else "head", key)
        if key not in self.objects:
            if missing_is_error:
                raise ObjectMissing(f"HeadObject {key}: 404")
            return None
        size = len(self.objects[key])
        return ObjectHead(etag=self._etag(key), metadata=self.metadata.get(key, {}), size=size)

    async def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str]
    ) -> None:
        if self._put_delay is not None:
            await asyncio.sleep(self._put_delay(key))
        self._log("put", key)
        self.written += len(data)
        if self.record:
            self.objects[key] = data
            self.metadata[key] = dict(metadata)


class MemoryDlq:
    """A DeadLetterSink keeping ``(body, attributes)`` in ``sent``; ``fail=True`` makes every send a
    transient :class:`ServiceUnavailable` (the DLQ unreachable)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.fail = fail

    async def send(self, body: str, attributes: dict[str, str] | None = None) -> str:
        if self.fail:
            raise ServiceUnavailable("SendMessage: connection refused")
        self.sent.append((body, dict(attributes or {})))
        return f"dlq-{len(self.sent)}"


def static_render(data: bytes, presets: Sequence[Preset], limits: Limits = DEFAULT_LIMITS) -> list[Rendition]:
    """A Renderer without libvips: ``thumb-<preset name>`` for every preset, 1x1; :data:`CORRUPT` is
    refused with :class:`CorruptImage`."""
    if data == CORRUPT:
        raise CorruptImage("cannot decode: not an image")
    return [Rendition(p, b"thumb-" + p.name.encode(), 1, 1) for p in presets]
