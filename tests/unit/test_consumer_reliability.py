"""The consumer's reliability rules against an in-memory queue: fast and deterministic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from worker.core.errors import CredentialsUnavailable
from worker.core.events import Item, ObjectRef
from worker.observability.telemetry import Metrics
from worker.runtime.consumer import Consumer
from worker.runtime.leases import ConsumerConfig, Lease, extension_due
from worker.runtime.pipeline import Outcome
from worker.testing import ManualClock, MemoryQueue, s3_message

pytestmark = pytest.mark.reliability

Behaviour = Callable[[ObjectRef], Awaitable[Outcome]]


class FakePipeline:
    def __init__(self, behaviours: dict[str, Behaviour] | None = None, delay: float = 0.0) -> None:
        self.behaviours = behaviours or {}
        self.delay = delay
        self.started: list[str] = []

    async def process(self, item: Item) -> Outcome:
        assert isinstance(item, ObjectRef)
        self.started.append(item.key)
        if item.key in self.behaviours:
            return await self.behaviours[item.key](item)
        await asyncio.sleep(self.delay)
        return Outcome("succeeded", "rendered", item.bucket, item.key)


def forever(_ref: ObjectRef) -> Awaitable[Outcome]:
    return asyncio.Event().wait()  # type: ignore[return-value]


async def run_for(consumer: Consumer, until: Callable[[], bool], timeout: float = 5.0) -> float:
    """Run the consumer until ``until()`` holds, then stop it; returns how long the stop took."""
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)
    stopped_at = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, timeout + 10)
    return time.monotonic() - stopped_at


def config(**overrides: Any) -> ConsumerConfig:
    base: dict[str, Any] = {"concurrency": 2, "wait_seconds": 0, "visibility_timeout": 60}
    return ConsumerConfig(**(base | overrides))


async def test_acks_arriving_during_a_delete_call_go_out_without_waiting_for_shutdown() -> None:
    queue = MemoryQueue([s3_message(f"k{i}") for i in range(6)])
    queue.delete_delay = 0.3  # k0's batch is still in flight when the others finish

    async def later(ref: ObjectRef) -> Outcome:
        await asyncio.sleep(0.2)
        return Outcome("succeeded", "rendered", ref.bucket, ref.key)

    pipeline = FakePipeline({f"k{i}": later for i in range(1, 6)}, delay=0.01)
    consumer = Consumer(queue, pipeline, config(concurrency=6))  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        deadline = time.monotonic() + 3
        while len(queue.deleted) < 6:
            assert time.monotonic() < deadline, f"only {queue.deleted} deleted while running"
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task


async def test_stop_during_a_delete_call_lets_it_finish_and_counts_it() -> None:
    queue = MemoryQueue([s3_message("k")])
    queue.delete_delay = 0.3
    metrics = Metrics()
    consumer = Consumer(queue, FakePipeline(), config(), metrics=metrics)  # type: ignore[arg-type]
    await run_for(consumer, lambda: queue.delete_calls == 1)  # stop while the batched delete is in flight
    assert queue.deleted == ["id-k"], "the delete under way was not cut off by shutdown"
    assert metrics.count("thumbx_messages_deleted_total") == 1


async def test_receives_only_when_there_is_room() -> None:
    queue = MemoryQueue([s3_message(f"k{i}") for i in range(5)])
    pipeline = FakePipeline({f"k{i}": forever for i in range(5)})
    consumer = Consumer(queue, pipeline, config(concurrency=2, shutdown_seconds=0.2))  # type: ignore[arg-type]
    await run_for(consumer, lambda: len(pipeline.started) == 2)
    await asyncio.sleep(0)
    assert queue.receives == [2], "one receive asking for exactly the free room, then none while full"
    assert len(queue.pending) == 3


async def test_refills_in_batches_of_half_the_slots_not_one_message_at_a_time() -> None:
    queue = MemoryQueue([s3_message(f"k{i}") for i in range(40)])

    def staggered(i: int) -> Behaviour:
        async def finish(ref: ObjectRef) -> Outcome:
            await asyncio.sleep(0.01 * (i % 10))  # completions one by one, as renders of mixed sizes do
            return Outcome("succeeded", "rendered", ref.bucket, ref.key)

        return finish

    pipeline = FakePipeline({f"k{i}": staggered(i) for i in range(40)})
    consumer = Consumer(queue, pipeline, config(concurrency=10))  # type: ignore[arg-type]
    await run_for(consumer, lambda: len(queue.deleted) == 40)
    asked = queue.receives  # how many messages each receive call asked for
    assert asked[0] == 10
    assert min(asked) >= 5, f"receive asked for {asked}: one call per finished message"


async def test_shutdown_deadline_returns_unfinished_at_once_and_flushes_finished() -> None:
    queue = MemoryQueue([s3_message("stuck"), s3_message("quick")])
    pipeline = FakePipeline({"stuck": forever}, delay=0.3)
    consumer = Consumer(queue, pipeline, config(shutdown_seconds=1.0))  # type: ignore[arg-type]
    took = await run_for(consumer, lambda: len(pipeline.started) == 2)
    assert took < 1.5
    assert queue.deleted == ["id-quick"], "work that finished inside the deadline was acked"
    assert queue.visibility == [(["id-stuck"], 0)], "unfinished work went back at once"
    assert consumer.in_flight == 0


async def test_credential_failure_pauses_receiving_instead_of_burning_receive_counts() -> None:
    messages = [s3_message(f"k{i}") for i in range(4)]
    queue = MemoryQueue(messages)

    async def no_credentials(ref: ObjectRef) -> Outcome:
        return Outcome("transient", CredentialsUnavailable.reason, ref.bucket, ref.key)

    pipeline = FakePipeline({"k0": no_credentials})
    consumer = Consumer(queue, pipeline, config(concurrency=1))  # type: ignore[arg-type]
    await run_for(consumer, lambda: consumer.status.paused_until > 0, timeout=3)
    assert pipeline.started == ["k0"], "no further message was received while credentials were missing"
    assert [timeout > 0 for _, timeout in queue.visibility] == [True]


async def test_gate_failure_holds_receiving_and_resumes_on_its_own() -> None:
    queue = MemoryQueue([s3_message("k0")])
    calls = 0

    async def gate() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise CredentialsUnavailable("sts down")

    consumer = Consumer(queue, FakePipeline(), config(), gate=gate)  # type: ignore[arg-type]
    await run_for(consumer, lambda: queue.deleted == ["id-k0"], timeout=5)
    assert calls >= 2
    assert queue.receives[0] >= 1


async def test_heartbeat_extends_every_due_message_in_one_batch() -> None:
    queue = MemoryQueue([s3_message(f"k{i}") for i in range(3)])
    pipeline = FakePipeline({f"k{i}": forever for i in range(3)})
    consumer = Consumer(
        queue,
        pipeline,  # type: ignore[arg-type]
        config(concurrency=3, visibility_timeout=2, shutdown_seconds=0.2),
    )
    await run_for(consumer, lambda: any(t == 2 for _, t in queue.visibility), timeout=5)
    batch = next(ids for ids, t in queue.visibility if t == 2)
    assert sorted(batch) == ["id-k0", "id-k1", "id-k2"]


def test_extension_stops_at_the_cap() -> None:
    cfg = ConsumerConfig(visibility_timeout=60, max_extend_seconds=100)
    lease = Lease(s3_message("k"), received_at=0.0, visible_until=60.0)
    assert extension_due(lease, now=10.0, config=cfg) is None  # 50 s left: not due
    assert extension_due(lease, now=40.0, config=cfg) == 60
    assert extension_due(lease, now=80.0, config=cfg) == 20  # only up to the cap
    assert extension_due(lease, now=101.0, config=cfg) is None


async def test_heartbeat_extends_on_the_consumers_clock_and_stops_at_the_cap() -> None:
    clock = ManualClock(1000.0)
    queue = MemoryQueue([s3_message("k")])
    started = asyncio.Event()

    async def held(_ref: ObjectRef) -> Outcome:
        started.set()
        return await forever(_ref)

    pipeline = FakePipeline({"k": held})
    cfg = config(visibility_timeout=60, max_extend_seconds=100, shutdown_seconds=0.2)
    consumer = Consumer(queue, pipeline, cfg, clock=clock)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))  # its own heartbeat sleeps 15 s: never beats here
    try:
        await asyncio.wait_for(started.wait(), 5)
        await consumer.extend_due()
        assert queue.visibility == [], "60 s left of 60: not due"
        clock.advance(40)
        await consumer.extend_due()
        assert queue.visibility == [(["id-k"], 60)]
        clock.advance(70)  # 110 s held: past the 100 s cap
        with capture_logs() as logs:
            await consumer.extend_due()
        assert queue.visibility == [(["id-k"], 60)], "no extension past the cap"
        assert [e["event"] for e in logs] == ["heartbeat_cap_reached"]
    finally:
        stop.set()
        await task
