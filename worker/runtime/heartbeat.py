"""The visibility heartbeat: extend every held, unsettled message before it would reappear, up to a cap.

Each beat finds the leases due (:func:`worker.runtime.leases.extension_due`), takes along whatever would be
due by the next beat so batches stay whole, and sends one ChangeMessageVisibilityBatch per timeout. Past
``max_extend_seconds`` a lease is no longer extended (logged once: SQS may hand it to another worker).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

import structlog

from worker.aws.sqs import MessageQueue
from worker.core.errors import ThumbxError
from worker.observability.telemetry import Metrics
from worker.runtime.leases import ConsumerConfig, Lease, extension_due

log = structlog.get_logger("worker.runtime.consumer")


class Heartbeat:
    def __init__(
        self,
        queue: MessageQueue,
        metrics: Metrics,
        config: ConsumerConfig,
        leases: Mapping[str, Lease],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._clock = clock  # lease times and the cap (worker.testing.ManualClock in tests)
        self._metrics = metrics
        self._config = config
        self._leases = leases  # the consumer's own dict, read at each beat

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._config.heartbeat_interval)
            try:
                await self.extend_due()
            except Exception:  # unmapped (a bug): one beat lost, not the heartbeat
                log.exception("heartbeat_failed")

    async def extend_due(self) -> None:
        """One beat: extend every held, unsettled message close to reappearing (batched by timeout)."""
        now = self._clock()
        held = [lease for lease in self._leases.values() if not lease.settled]
        for lease in held:
            if not lease.capped and now - lease.received_at >= self._config.max_extend_seconds:
                lease.capped = True  # from now on SQS may hand it to another worker: say so once
                log.warning("heartbeat_cap_reached", message_id=lease.message.message_id)
        if not any(extension_due(lease, now, self._config) for lease in held):
            return
        # Something is due: take along whatever would be due by the next beat, so batches stay whole.
        due: dict[int, list[Lease]] = {}
        for lease in held:
            seconds = extension_due(lease, now, self._config, early=self._config.heartbeat_interval)
            if seconds is not None:
                due.setdefault(seconds, []).append(lease)
        for seconds, leases in due.items():
            try:
                result = await self._queue.change_visibility([lease.message for lease in leases], seconds)
            except ThumbxError as exc:
                log.warning("heartbeat_failed", count=len(leases), error=str(exc))
                continue
            for lease in leases:
                if lease.message.message_id not in result.failed:
                    lease.visible_until = now + seconds
            self._metrics.inc("thumbx_visibility_extended_total", len(leases) - len(result.failed))
            log.debug("heartbeat", extended=len(leases), seconds=seconds)
