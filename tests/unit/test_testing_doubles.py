"""worker.testing: the shipped doubles fit the runtime's Protocols (checked by mypy here) and behave as the
real boundaries do where tests rely on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from worker.aws.s3 import ObjectStore
from worker.aws.sqs import MessageQueue
from worker.core.errors import CorruptImage, ObjectMissing
from worker.core.presets import parse_presets
from worker.runtime.dead_letter import DeadLetterSink
from worker.runtime.pipeline import Renderer
from worker.testing import (
    CORRUPT,
    ManualClock,
    MemoryDlq,
    MemoryQueue,
    MemoryStore,
    s3_message,
    static_render,
)


def _fits(queue: MessageQueue, store: ObjectStore, dlq: DeadLetterSink, renderer: Renderer) -> None:
    """Never called: mypy checks the call below, so a double that drifts from its Protocol fails
    `make typecheck`."""


if TYPE_CHECKING:
    _fits(MemoryQueue(), MemoryStore(), MemoryDlq(), static_render)


def test_the_manual_clock_moves_only_forward_and_only_when_told() -> None:
    clock = ManualClock(10.0)
    assert clock() == clock() == 10.0
    assert clock.advance(2.5) == clock() == 12.5
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)


async def test_the_queue_hands_out_batches_and_records_the_acks() -> None:
    queue = MemoryQueue([s3_message(k) for k in "abc"], idle_seconds=0)
    first = await queue.receive(2, 0)
    assert [m.message_id for m in first] == ["id-a", "id-b"]
    await queue.delete(first)
    await queue.change_visibility(await queue.receive(10, 0), 30)
    assert await queue.receive(10, 0) == []
    assert (queue.receives, queue.deleted, queue.visibility) == (
        [2, 10, 10],
        ["id-a", "id-b"],
        [(["id-c"], 30)],
    )


async def test_the_store_refuses_a_missing_source_as_s3store_does_and_keeps_what_is_put() -> None:
    store = MemoryStore({"input/a.jpg": b"abc"})
    assert await store.head("b", "out/x.jpg") is None
    with pytest.raises(ObjectMissing):
        await store.head("b", "input/none.jpg", missing_is_error=True)
    with pytest.raises(ObjectMissing):
        await store.get("b", "input/none.jpg")
    await store.put("b", "out/x.jpg", b"xy", content_type="image/jpeg", metadata={"k": "v"})
    head = await store.head("b", "out/x.jpg")
    assert head is not None
    assert (head.etag, head.metadata, head.size) == ("etag-2", {"k": "v"}, 2)
    assert (await store.get("b", "input/a.jpg")).data == b"abc"
    assert [op for op, _ in store.calls] == ["head", "head-source", "get", "put", "head", "get"]


async def test_unrecorded_runs_keep_counts_only() -> None:
    store = MemoryStore(record=False)
    await store.put("b", "k", b"1234", content_type="image/jpeg", metadata={})
    assert (store.written, store.objects, store.calls) == (4, {}, [])


def test_the_static_renderer_names_its_outputs_and_refuses_the_corrupt_marker() -> None:
    presets = parse_presets("sm:64:webp,lg:256:jpeg")
    assert [r.data for r in static_render(b"any", presets)] == [b"thumb-sm", b"thumb-lg"]
    with pytest.raises(CorruptImage):
        static_render(CORRUPT, presets)
