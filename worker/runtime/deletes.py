"""Batched acknowledgements: deletes wait a moment to share one DeleteMessageBatch (up to 10 messages).

A full batch goes out at once; otherwise a delayed flush sends what has gathered after ``delay`` seconds,
then whatever arrived while that batch was in flight. A failed delete is logged, never raised: the message
reappears after its visibility timeout and is acknowledged again as a duplicate (the pipeline skips it).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from worker.aws.sqs import Message, MessageQueue
from worker.core.errors import ThumbxError
from worker.observability.telemetry import Metrics

log = structlog.get_logger("worker.runtime.consumer")

BATCH = 10  # SQS's DeleteMessageBatch limit


class DeleteBatcher:
    def __init__(self, queue: MessageQueue, metrics: Metrics, delay: float) -> None:
        self._queue = queue
        self._metrics = metrics
        self._delay = delay
        self._pending: list[Message] = []
        self._flush_task: asyncio.Task[None] | None = None

    async def schedule(self, message: Message) -> None:
        self._pending.append(message)
        if len(self._pending) >= BATCH:
            await self.flush()
        elif self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self._delayed_flush())

    async def _delayed_flush(self) -> None:
        # Nobody awaits this task: an exception escaping it would only surface as asyncio's "Task exception
        # was never retrieved" (and the acks would wait for shutdown). flush logs and never raises.
        await asyncio.sleep(self._delay)
        while self._pending:  # acks that arrived while a batch was in flight go out next, not at shutdown
            await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            result = await self._queue.delete(batch)
        except ThumbxError as exc:
            log.warning("delete_failed", count=len(batch), error=str(exc))
            return
        except Exception:  # unmapped (a bug): logged; the messages reappear and are acked as duplicates
            log.exception("delete_failed", count=len(batch))
            return
        for message_id, code in result.failed.items():
            log.warning("delete_failed", message_id=message_id, code=code)
        self._metrics.inc("thumbx_messages_deleted_total", len(batch) - len(result.failed))

    async def finish(self, timeout: float) -> None:
        """Let a flush under way complete (within ``timeout``), then send what is left."""
        # A flush under way has already taken its batch off the list: cancelling it would leave those
        # messages neither deleted nor counted (they would come back as duplicates), so let it finish.
        flush = self._flush_task
        if flush is not None and not flush.done():
            done, _ = await asyncio.wait({flush}, timeout=timeout)
            if not done:
                flush.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flush
        await self.flush()
