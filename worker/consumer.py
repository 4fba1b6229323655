"""The asyncio loop: long-poll SQS, process messages with bounded concurrency, then ack, retry or dead-letter.

A message's fate is decided from the outcomes of its records:

* every record succeeded or was ignored on purpose -> deleted (in batches);
* any record failed transiently -> left on the queue, its visibility set to a growing backoff;
* otherwise any record failed permanently -> sent to the DLQ with the reason attached, then deleted
  (without a DLQ configured it is left for the queue's redrive policy instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import structlog

from worker.errors import ThumbxError
from worker.events import parse_body
from worker.observability import Metrics
from worker.pipeline import Outcome, Pipeline
from worker.queue import Message, MessageQueue

log = structlog.get_logger(__name__)

Fate = Literal["delete", "retry", "dead_letter"]
OutcomeObserver = Callable[[Message, Sequence[Outcome]], None]


class DeadLetterSink(Protocol):
    async def send(self, body: str, attributes: dict[str, str] | None = None) -> str: ...


@dataclass(frozen=True)
class ConsumerConfig:
    concurrency: int = 4
    wait_seconds: int = 20
    visibility_timeout: int = 60
    retry_base_seconds: int = 10
    retry_max_seconds: int = 900
    delete_batch_delay: float = 0.05


def decide(outcomes: Sequence[Outcome]) -> Fate:
    if any(o.status == "transient" for o in outcomes):
        return "retry"
    if any(o.status == "permanent" for o in outcomes):
        return "dead_letter"
    return "delete"


def retry_delay(receive_count: int, config: ConsumerConfig) -> int:
    """Visibility backoff for a transient failure: base * 2^(n-1), capped, with a little jitter."""
    delay = config.retry_base_seconds * 2 ** max(0, min(receive_count - 1, 16))
    jitter = random.uniform(0.8, 1.2)
    return int(min(config.retry_max_seconds, delay * jitter))


class Consumer:
    def __init__(
        self,
        queue: MessageQueue,
        pipeline: Pipeline,
        config: ConsumerConfig,
        *,
        metrics: Metrics | None = None,
        dead_letters: DeadLetterSink | None = None,
        observer: OutcomeObserver | None = None,
    ) -> None:
        self._queue = queue
        self._pipeline = pipeline
        self._config = config
        self._metrics = metrics or Metrics()
        self._dlq = dead_letters
        self._observer = observer
        self._in_flight: set[asyncio.Task[None]] = set()
        self._room = asyncio.Condition()
        self._deletes: list[Message] = []
        self._delete_flush: asyncio.Task[None] | None = None
        self.last_tick = time.monotonic()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then let in-flight work finish and flush deletes."""
        stop_wait = asyncio.create_task(stop.wait())
        failures = 0
        try:
            while not stop.is_set():
                self.last_tick = time.monotonic()
                await self._wait_for_room(stop)
                if stop.is_set():
                    break
                free = self._config.concurrency - self.in_flight
                receive = asyncio.create_task(self._queue.receive(min(10, free), self._config.wait_seconds))
                await asyncio.wait({receive, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not receive.done():
                    receive.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ThumbxError):
                        await receive
                    break
                try:
                    messages = receive.result()
                    failures = 0
                except ThumbxError as exc:
                    failures += 1
                    pause = min(30.0, 0.5 * 2**failures) * random.uniform(0.5, 1.0)
                    log.warning("receive_failed", error=str(exc), reason=exc.reason, pause_s=round(pause, 2))
                    self._metrics.inc("thumbx_receive_errors_total", reason=exc.reason)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), pause)
                    continue
                for message in messages:
                    self._metrics.inc("thumbx_messages_received_total")
                    task = asyncio.create_task(self._handle(message))
                    self._in_flight.add(task)
                    task.add_done_callback(self._done)
        finally:
            stop_wait.cancel()
            await self.drain()

    async def drain(self) -> None:
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self.flush_deletes()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        asyncio.get_running_loop().create_task(self._notify_room())

    async def _notify_room(self) -> None:
        async with self._room:
            self._room.notify_all()

    async def _wait_for_room(self, stop: asyncio.Event) -> None:
        async with self._room:
            while self.in_flight >= self._config.concurrency and not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), 1.0)

    async def _handle(self, message: Message) -> None:
        started = time.perf_counter()
        outcomes = [await self._pipeline.process(item) for item in parse_body(message.body)]
        fate = decide(outcomes)
        try:
            if fate == "delete":
                await self._schedule_delete(message)
            elif fate == "retry":
                delay = retry_delay(message.receive_count, self._config)
                await self._queue.change_visibility([message], delay)
                self._metrics.inc("thumbx_messages_retried_total")
            else:
                await self._dead_letter(message, outcomes)
        except ThumbxError as exc:
            # Could not ack/retry/dead-letter: the message reappears after its visibility timeout.
            log.warning("ack_failed", message_id=message.message_id, fate=fate, error=str(exc))
        self._record(message, outcomes, fate, (time.perf_counter() - started) * 1000)

    async def _dead_letter(self, message: Message, outcomes: Sequence[Outcome]) -> None:
        failed = next(o for o in outcomes if o.status == "permanent")
        if self._dlq is None:
            log.warning("no_dlq_configured", message_id=message.message_id, reason=failed.reason)
            return  # the queue's redrive policy moves it after maxReceiveCount
        await self._dlq.send(
            message.body,
            {
                "thumbx-reason": failed.reason,
                "thumbx-detail": failed.detail or failed.reason,
                "thumbx-key": failed.key or "-",
                "thumbx-source-message-id": message.message_id,
            },
        )
        self._metrics.inc("thumbx_messages_dead_lettered_total", reason=failed.reason)
        await self._schedule_delete(message)

    async def _schedule_delete(self, message: Message) -> None:
        self._deletes.append(message)
        if len(self._deletes) >= 10:
            await self.flush_deletes()
        elif self._delete_flush is None or self._delete_flush.done():
            self._delete_flush = asyncio.create_task(self._delayed_flush())

    async def _delayed_flush(self) -> None:
        await asyncio.sleep(self._config.delete_batch_delay)
        await self.flush_deletes()

    async def flush_deletes(self) -> None:
        batch, self._deletes = self._deletes, []
        if not batch:
            return
        try:
            result = await self._queue.delete(batch)
        except ThumbxError as exc:
            log.warning("delete_failed", count=len(batch), error=str(exc))
            return
        for message_id, code in result.failed.items():
            log.warning("delete_failed", message_id=message_id, code=code)
        self._metrics.inc("thumbx_messages_deleted_total", len(batch) - len(result.failed))

    def _record(self, message: Message, outcomes: Sequence[Outcome], fate: Fate, elapsed_ms: float) -> None:
        for outcome in outcomes:
            self._metrics.inc("thumbx_records_total", status=outcome.status, reason=outcome.reason)
            if "render" in outcome.timings_ms:
                self._metrics.observe("thumbx_render_ms", outcome.timings_ms["render"])
        self._metrics.observe("thumbx_message_ms", elapsed_ms)
        level = "info" if fate == "delete" else "warning"
        getattr(log, level)(
            "message_done",
            message_id=message.message_id,
            fate=fate,
            receive_count=message.receive_count,
            elapsed_ms=round(elapsed_ms, 1),
            records=[
                {
                    "status": o.status,
                    "reason": o.reason,
                    "key": o.key,
                    "outputs": list(o.outputs),
                    "timings_ms": o.timings_ms,
                    **({"detail": o.detail} if o.detail else {}),
                }
                for o in outcomes
            ],
        )
        if self._observer is not None:
            self._observer(message, outcomes)
