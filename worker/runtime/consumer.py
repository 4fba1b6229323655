"""The asyncio loop: long-poll SQS, process messages with bounded concurrency, then ack, retry or dead-letter.

A message's fate is decided from the outcomes of its records:

* every record succeeded or was ignored on purpose -> deleted (in batches);
* any record failed transiently -> left on the queue, its visibility set to a growing backoff (records that
  succeeded are skipped cheaply on redelivery: the pipeline's one-HEAD idempotency check);
* otherwise any record failed permanently -> sent to the DLQ once, with the reason and the failed record
  indexes attached, then deleted; the other records of that body were written and stay written
  (without a DLQ configured it is left for the queue's redrive policy instead);
* a message that fails in any way on its last receive (``ApproximateReceiveCount`` has reached the source
  queue's ``maxReceiveCount``, :mod:`worker.runtime.dead_letter`) is dead-lettered the same way, with the
  transient's reason (or ``unexpected``), instead of being moved later by the redrive policy unexplained.

Reliability rules (at-least-once, nothing lost):

* receive only when there is room (at most ``concurrency`` messages held), asking SQS for an explicit
  visibility timeout so the heartbeat knows when each message would reappear;
* the heartbeat extends every held message before it would reappear, in batches, up to a cap;
* when credentials cannot be obtained the loop pauses receiving (exponential backoff, jitter) instead of
  burning receive counts towards the DLQ, and resumes on its own;
* on stop: no more receives, in-flight work may finish until the shutdown deadline, unfinished messages are
  returned at once (visibility 0), pending deletes are flushed; a long poll in flight when stop began is
  not abandoned (SQS would still hand it messages, hidden for a visibility timeout): it may complete
  within the deadline and whatever it returns is released at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from worker.aws.sqs import Message, MessageQueue
from worker.core.errors import ThumbxError, TransientError
from worker.core.events import parse_body
from worker.core.redrive import RedrivePolicy
from worker.observability.telemetry import Metrics
from worker.runtime.dead_letter import (
    DeadLetterSink,
    dead_letter_attributes,
    final_fate,
    is_last_receive,
    send_dead_letter,
    send_unexpected,
)
from worker.runtime.deletes import DeleteBatcher
from worker.runtime.fate import CREDENTIAL_REASONS, QUEUE_WORDS, UNEXPECTED, Fate, FateObserver
from worker.runtime.heartbeat import Heartbeat
from worker.runtime.leases import ConsumerConfig, ConsumerStatus, Lease, ReceivePause, retry_delay
from worker.runtime.pipeline import Outcome, Pipeline

log = structlog.get_logger(__name__)

OutcomeObserver = Callable[[Message, Sequence[Outcome]], None]
ReadinessGate = Callable[[], Awaitable[object]]
"""Raises a ThumbxError (e.g. CredentialsUnavailable) when the worker should not receive now."""


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
        gate: ReadinessGate | None = None,
        redrive: RedrivePolicy | None = None,
        status: ConsumerStatus | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._clock = clock  # lease times and the heartbeat's cap (worker.testing.ManualClock in tests)
        self._redrive = redrive  # the source queue's: a failure on its last receive is dead-lettered here
        self._pipeline = pipeline
        self._config = config
        self._metrics = metrics or Metrics()
        self._fates = FateObserver(self._metrics, words=QUEUE_WORDS)  # message_done in the queue's words
        self._dlq = dead_letters
        self._observer = observer
        self._gate = gate
        self._leases: dict[str, Lease] = {}
        self._room = asyncio.Event()
        self._deletes = DeleteBatcher(queue, self._metrics, config.delete_batch_delay)
        self._heartbeat = Heartbeat(queue, self._metrics, config, self._leases, clock)
        self._late_receive: asyncio.Task[None] | None = None  # a long poll still in flight at stop
        self.status = status or ConsumerStatus()
        self._pause_state = ReceivePause(self.status, config.pause_max_seconds)

    @property
    def in_flight(self) -> int:
        return len(self._leases)

    @property
    def last_tick(self) -> float:
        return self.status.last_tick

    # --- main loop ----------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then drain within the shutdown deadline (see module doc)."""
        heartbeat = asyncio.create_task(self._heartbeat.run(), name="thumbx-heartbeat")
        try:
            await self._receive_loop(stop)
        finally:
            await self._shutdown(heartbeat)

    async def _receive_loop(self, stop: asyncio.Event) -> None:
        stop_wait = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                self._tick()
                if not await self._wait_for_room(stop_wait):
                    return
                held = self.status.paused_until - time.monotonic()
                if held > 0:  # a job just failed for want of credentials: let them come back first
                    await asyncio.wait({stop_wait}, timeout=held)
                    continue
                try:
                    if self._gate is not None:
                        await self._gate()
                    messages = await self._receive(stop_wait)
                except ThumbxError as exc:
                    await self._pause(exc, stop_wait)
                    continue
                except Exception as exc:  # unmapped (a bug): pause like an outage, never end the loop
                    log.exception("receive_failed")
                    await self._pause(
                        TransientError(f"{type(exc).__name__}: {exc}", reason=UNEXPECTED.slug), stop_wait
                    )
                    continue
                if messages is None:
                    return  # stopped while polling
                self._pause_state.received()
                for message in messages:
                    self._start(message)
        finally:
            stop_wait.cancel()

    def _tick(self) -> None:
        self.status.last_tick = time.monotonic()

    @property
    def _refill_at(self) -> int:
        # Receive once half a batch of slots is free (or nothing is held): one call for several messages
        # rather than one per finished message, while half the slots still keep the render pool busy.
        return max(1, min(10, self._config.concurrency) // 2)

    async def _wait_for_room(self, stop_wait: asyncio.Task[bool]) -> bool:
        """Wait until enough slots are free to receive (see ``_refill_at``); False when stopped meanwhile."""
        while self.in_flight > 0 and self._config.concurrency - self.in_flight < self._refill_at:
            self._room.clear()
            room = asyncio.create_task(self._room.wait())
            await asyncio.wait({room, stop_wait}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            room.cancel()
            self._tick()
            if stop_wait.done():
                return False
        return not stop_wait.done()

    async def _receive(self, stop_wait: asyncio.Task[bool]) -> list[Message] | None:
        free = self._config.concurrency - self.in_flight
        receive = asyncio.create_task(
            self._queue.receive(
                min(10, free), self._config.wait_seconds, visibility_timeout=self._config.visibility_timeout
            )
        )
        await asyncio.wait({receive, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not receive.done():
            # Stopping while a long poll is in flight. Abandoning it would not stop SQS from handing it
            # messages (hidden for a full visibility timeout, a receive spent): let it finish within the
            # shutdown deadline instead and release whatever it returns at once (see _shutdown).
            self._late_receive = asyncio.create_task(self._release_late(receive), name="thumbx-late-receive")
            return None
        return receive.result()

    async def _release_late(self, receive: asyncio.Task[list[Message]]) -> None:
        try:
            messages = await receive
        except ThumbxError as exc:
            log.info("receive_after_stop_failed", error=str(exc))
            return
        except asyncio.CancelledError:
            receive.cancel()
            log.warning("receive_abandoned", reason="shutdown deadline")
            raise
        if not messages:
            return
        self._metrics.inc("thumbx_messages_received_total", len(messages))
        await self._return_to_queue(messages, event="released_received_after_stop")

    async def _pause(self, exc: ThumbxError, stop_wait: asyncio.Task[bool]) -> None:
        pause = self._pause_state.failed(exc)
        log.warning("receive_paused", error=str(exc), reason=exc.reason, pause_s=round(pause, 2))
        self._metrics.inc("thumbx_receive_errors_total", reason=exc.reason)
        await asyncio.wait({stop_wait}, timeout=pause)

    def _start(self, message: Message) -> None:
        now = self._clock()
        self._metrics.inc("thumbx_messages_received_total")
        held = self._leases.get(message.message_id)
        if held is not None:
            # Redelivered while still being processed here (the heartbeat lost a race, or SQS delivered a
            # copy): keep the one job running, and ack with the newest receipt handle.
            held.message = message
            held.visible_until = now + self._config.visibility_timeout
            self._metrics.inc("thumbx_messages_redelivered_while_held_total")
            log.warning("redelivered_while_held", message_id=message.message_id)
            return
        lease = Lease(message, received_at=now, visible_until=now + self._config.visibility_timeout)
        self._leases[message.message_id] = lease
        lease.task = asyncio.create_task(self._handle(lease))
        self._metrics.set("thumbx_in_flight", self.in_flight)

    def _release_lease(self, lease: Lease) -> None:
        if self._leases.get(lease.message.message_id) is lease:
            del self._leases[lease.message.message_id]
        self._metrics.set("thumbx_in_flight", self.in_flight)
        self._room.set()

    # --- one message --------------------------------------------------------------------------------------

    async def _handle(self, lease: Lease) -> None:
        started = time.perf_counter()
        try:
            try:
                items = parse_body(lease.message.body)
                outcomes = [await self._pipeline.process(item) for item in items]
            except Exception as exc:  # a bug must not vanish silently; the message reappears by itself
                log.exception("handle_failed", message_id=lease.message.message_id)
                await self._dead_letter_unexpected(lease, exc)
                return
            lease.settled = True
            message = lease.message  # the newest receipt handle, if it was redelivered meanwhile
            fate: Fate = final_fate(outcomes, message.receive_count, self._redrive)
            if any(o.reason in CREDENTIAL_REASONS for o in outcomes):
                self._pause_state.trip()  # for want of credentials: hold receiving too
            try:
                if fate == "done":
                    await self._schedule_delete(message)
                elif fate == "retry":
                    delay = retry_delay(message.receive_count, self._config)
                    await self._queue.change_visibility([message], delay)
                    self._metrics.inc("thumbx_messages_retried_total")
                else:
                    await self._dead_letter(message, outcomes)
            except ThumbxError as exc:
                # Could not ack/retry/dead-letter: the message reappears after its visibility timeout.
                log.warning(
                    "ack_failed", message_id=message.message_id, fate=QUEUE_WORDS[fate], error=str(exc)
                )
            self._record(message, items, outcomes, fate, time.perf_counter() - started)
        except Exception:  # a bug must not vanish silently; the message reappears by itself
            log.exception("handle_failed", message_id=lease.message.message_id)
        finally:
            self._release_lease(lease)

    async def _dead_letter(self, message: Message, outcomes: Sequence[Outcome]) -> None:
        if self._dlq is None:
            reason = dead_letter_attributes(message.message_id, outcomes)["thumbx-reason"]
            log.warning("no_dlq_configured", message_id=message.message_id, reason=reason)
            return  # the queue's redrive policy moves it after maxReceiveCount
        await send_dead_letter(
            self._dlq,
            message.body,
            message.message_id,
            outcomes,
            self._metrics,
            receive_count=message.receive_count,
        )
        await self._schedule_delete(message)

    async def _dead_letter_unexpected(self, lease: Lease, exc: Exception) -> None:
        """Handling raised: on the last receive, dead-letter it with reason ``unexpected`` (else it reappears
        after its visibility timeout, and the redrive policy would move it without a reason)."""
        message = lease.message
        if self._dlq is None or not is_last_receive(message.receive_count, self._redrive):
            return
        lease.settled = True
        try:
            await send_unexpected(
                self._dlq, message.body, message.message_id, exc, message.receive_count, self._metrics
            )
            await self._schedule_delete(message)
        except ThumbxError as send_exc:
            log.warning(
                "ack_failed",
                message_id=message.message_id,
                fate=QUEUE_WORDS["dead_lettered"],
                error=str(send_exc),
            )

    # --- batched acks (worker.runtime.deletes), visibility heartbeat (worker.runtime.heartbeat) ---------

    async def _schedule_delete(self, message: Message) -> None:
        await self._deletes.schedule(message)

    async def flush_deletes(self) -> None:
        await self._deletes.flush()

    async def extend_due(self) -> None:
        """One heartbeat: extend every held, unsettled message close to reappearing (batched by timeout)."""
        await self._heartbeat.extend_due()

    # --- shutdown -----------------------------------------------------------------------------------------

    async def _shutdown(self, heartbeat: asyncio.Task[None]) -> None:
        self.status.draining = True
        deadline = time.monotonic() + self._config.shutdown_seconds
        reserve = min(2.0, self._config.shutdown_seconds / 4)  # time kept for the release and the flush
        tasks = [lease.task for lease in self._leases.values() if lease.task is not None]
        if tasks:
            log.info("draining", in_flight=len(tasks), deadline_s=self._config.shutdown_seconds)
        late = [self._late_receive] if self._late_receive is not None else []
        if tasks or late:
            await asyncio.wait([*tasks, *late], timeout=max(0.0, deadline - reserve - time.monotonic()))
        for task in late:  # past the deadline: abandon the poll (what it gets reappears after its timeout)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        heartbeat.cancel()  # before releasing: a late extension must not hide a returned message again
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        unfinished = [lease for lease in self._leases.values() if not lease.settled]
        for lease in unfinished:
            if lease.task is not None:
                lease.task.cancel()
        if unfinished:
            await self._return_to_queue([lease.message for lease in unfinished])
        remaining = [lease.task for lease in self._leases.values() if lease.task is not None]
        if remaining:  # acks already under way: give them what is left of the deadline
            await asyncio.wait(remaining, timeout=max(0.1, deadline - time.monotonic()))
        await self._deletes.finish(timeout=max(0.1, deadline - time.monotonic()))

    async def _return_to_queue(
        self, messages: Sequence[Message], *, event: str = "released_unfinished"
    ) -> None:
        """Make ``messages`` visible again at once; count and log (``event``) the ones SQS took back."""
        try:
            result = await self._queue.change_visibility(messages, 0)
        except ThumbxError as exc:
            log.warning("release_failed", count=len(messages), error=str(exc))
            return
        self._metrics.inc("thumbx_messages_released_total", len(messages) - len(result.failed))
        log.info(event, message_ids=[m.message_id for m in messages if m.message_id not in result.failed])

    async def drain(self) -> None:
        """Wait for every held message to settle, then flush deletes (no deadline; for tests and tools)."""
        tasks = [lease.task for lease in self._leases.values() if lease.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._deletes.finish(timeout=30.0)

    # --- observation --------------------------------------------------------------------------------------

    def _record(
        self,
        message: Message,
        items: Sequence[object],
        outcomes: Sequence[Outcome],
        fate: Fate,
        elapsed_s: float,
    ) -> None:
        self._fates.settled(
            message.message_id,
            message.receive_count,
            fate,
            items,
            outcomes,
            elapsed_s,
            sent_timestamp=message.attributes.get("SentTimestamp"),
        )
        if self._observer is not None:
            self._observer(message, outcomes)
