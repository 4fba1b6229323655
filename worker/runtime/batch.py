"""Process a batch of queued records and decide each one's fate: the core the Lambda shim shares.

A *record* is one SQS message (or one record of a direct S3 / EventBridge event): a body holding zero or
more S3 object references. Its fate (:data:`worker.runtime.fate.Fate`) follows from the outcomes of its
references, exactly as in the service's consumer (:func:`worker.runtime.dead_letter.final_fate`), and is
counted and logged (``message_done``) by the same :class:`worker.runtime.fate.FateObserver`:

* ``done``          every reference succeeded or was ignored on purpose -> acknowledged;
* ``dead_lettered`` a permanent failure, or any failure on the source queue's last receive
                    (:mod:`worker.runtime.dead_letter`) -> to the DLQ with the reason, then acknowledged;
* ``retry``         a transient failure (or a DLQ that could not take the message) -> redelivered later;
* ``unstarted``     the time guard stopped it before it began -> redelivered later, never half-done.

The processor holds no AWS client of its own: it gets the pipeline and the DLQ sink from
:func:`worker.runtime.service.open_runtime`, so the ECS service and the Lambda shim render with the same code.
Per batch it also counts the records received, acknowledged (``thumbx_messages_deleted_total``: SQS
records the event source mapping deletes) and retried, for the Lambda's EMF document.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from worker.core.environ import Reader
from worker.core.errors import ThumbxError, TransientError
from worker.core.events import parse_body
from worker.core.redrive import RedrivePolicy
from worker.observability.telemetry import Metrics
from worker.runtime.dead_letter import (
    DeadLetterSink,
    dead_letter_attributes,
    fate_of,
    is_last_receive,
    send_dead_letter,
    send_unexpected,
)
from worker.runtime.fate import FIFO_ORDER, NO_DLQ_CONFIGURED, TIME_GUARD, Fate, FateObserver
from worker.runtime.pipeline import Outcome, Pipeline

log = structlog.get_logger(__name__)

RemainingMillis = Callable[[], int]
RedriveSource = Callable[[], Awaitable[RedrivePolicy | None]]
"""Answers the source queue's redrive policy (read once, when a record first needs it)."""
DEFAULT_SAFETY_MARGIN_MS = Reader({}).integer("THUMBX_LAMBDA_SAFETY_MS")  # the table's default


class UnreportableFailure(TransientError):
    """A record must be retried but has no usable id: only failing the whole batch retries it."""

    reason = "unreportable_failure"


@dataclass(frozen=True)
class BatchRecord:
    """One unit of work. ``message_id`` is the SQS messageId (None when the event has none)."""

    body: str
    message_id: str | None = None
    label: str = ""
    receive_count: int = 1
    sent_timestamp: str | None = None  # SQS SentTimestamp (epoch ms): the end-to-end latency's start

    @property
    def name(self) -> str:
        return self.message_id or self.label or "-"


@dataclass(frozen=True)
class RecordResult:
    record: BatchRecord
    fate: Fate
    outcomes: tuple[Outcome, ...] = ()
    reason: str = ""

    @property
    def needs_retry(self) -> bool:
        return self.fate in ("retry", "unstarted")


@dataclass(frozen=True)
class BatchSettings:
    concurrency: int = 4
    safety_margin_ms: int = DEFAULT_SAFETY_MARGIN_MS

    @classmethod
    def from_env(cls, env: Mapping[str, str], concurrency: int) -> BatchSettings:
        margin = Reader(env).integer("THUMBX_LAMBDA_SAFETY_MS")
        return cls(concurrency=concurrency, safety_margin_ms=margin)


@dataclass(frozen=True)
class BatchReport:
    results: tuple[RecordResult, ...]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def retry(self) -> tuple[RecordResult, ...]:
        return tuple(r for r in self.results if r.needs_retry)

    def item_failures(self) -> list[dict[str, str]]:
        """SQS partial-batch response entries. Raises rather than name an empty or unknown id."""
        ids: list[str] = []
        for result in self.retry:
            message_id = result.record.message_id
            if not message_id:
                raise UnreportableFailure(f"record {result.record.name} must be retried but has no messageId")
            if message_id not in ids:
                ids.append(message_id)
        return [{"itemIdentifier": message_id} for message_id in ids]


class BatchProcessor:
    """Runs records through the pipeline with bounded concurrency and a remaining-time guard."""

    def __init__(
        self,
        pipeline: Pipeline,
        settings: BatchSettings,
        *,
        dead_letters: DeadLetterSink | None = None,
        metrics: Metrics | None = None,
        redrive: RedriveSource | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._settings = settings
        self._dlq = dead_letters
        self._metrics = metrics or Metrics()
        self._fates = FateObserver(self._metrics)
        self._redrive = redrive  # the SQS source queue's policy: its last receive is dead-lettered here

    async def process(
        self,
        records: Sequence[BatchRecord],
        remaining_ms: RemainingMillis | None = None,
        *,
        ordered: bool = False,
    ) -> BatchReport:
        """Process every record; ``ordered`` (FIFO queues): one at a time, none after a retried one."""
        if ordered:
            results = await self._in_order(records, remaining_ms)
        else:
            slots = asyncio.Semaphore(max(1, self._settings.concurrency))

            async def bounded(record: BatchRecord) -> RecordResult:
                async with slots:
                    return await self._guarded(record, remaining_ms)

            results = list(await asyncio.gather(*(bounded(r) for r in records)))
        counts: dict[str, int] = {}
        for result in results:
            counts[result.fate] = counts.get(result.fate, 0) + 1
        report = BatchReport(tuple(results), counts)
        self._count(report)
        return report

    def _count(self, report: BatchReport) -> None:
        retried = len(report.retry)
        acked = sum(1 for r in report.results if not r.needs_retry and r.record.message_id is not None)
        self._metrics.inc("thumbx_messages_received_total", len(report.results))
        if acked:
            self._metrics.inc("thumbx_messages_deleted_total", acked)
        if retried:
            self._metrics.inc("thumbx_messages_retried_total", retried)

    async def _in_order(
        self, records: Sequence[BatchRecord], remaining_ms: RemainingMillis | None
    ) -> list[RecordResult]:
        results: list[RecordResult] = []
        for index, record in enumerate(records):
            result = await self._guarded(record, remaining_ms)
            results.append(result)
            if result.needs_retry:  # FIFO: later records must not overtake this one
                results.extend(
                    RecordResult(r, "unstarted", reason=FIFO_ORDER.slug) for r in records[index + 1 :]
                )
                break
        return results

    async def _guarded(self, record: BatchRecord, remaining_ms: RemainingMillis | None) -> RecordResult:
        if remaining_ms is not None and remaining_ms() < self._settings.safety_margin_ms:
            self._metrics.inc("thumbx_records_unstarted_total")
            log.warning("record_unstarted", record=record.name, reason=TIME_GUARD.slug)
            return RecordResult(record, "unstarted", reason=TIME_GUARD.slug)
        return await self.process_record(record)

    async def process_record(self, record: BatchRecord) -> RecordResult:
        """One record, start to finish, never raising: what the service's consumer needs per message too
        (it then deletes ``done``/``dead_lettered`` records and backs the others off)."""
        try:
            return await self._handle(record)
        except Exception as exc:  # a bug must not lose the message (nor fail its neighbours): retry it
            log.exception("record_unexpected_error", record=record.name)
            reason = f"unexpected_{type(exc).__name__}"
            if self._dlq is not None and await self._last_receive(record):
                try:
                    return RecordResult(
                        record,
                        "dead_lettered",
                        reason=await send_unexpected(
                            self._dlq, record.body, record.name, exc, record.receive_count, self._metrics
                        ),
                    )
                except ThumbxError as send_exc:
                    log.warning("dead_letter_failed", record=record.name, error=str(send_exc))
            return RecordResult(record, "retry", reason=reason)

    async def _last_receive(self, record: BatchRecord) -> bool:
        """Only SQS records (with a messageId) have receive counts the source queue's redrive counts."""
        if record.message_id is None or self._redrive is None:
            return False
        return is_last_receive(record.receive_count, await self._redrive())

    async def _handle(self, record: BatchRecord) -> RecordResult:
        started = time.perf_counter()
        items = parse_body(record.body)
        outcomes = tuple([await self._pipeline.process(item) for item in items])
        fate: Fate = fate_of(outcomes)
        if fate == "retry" and await self._last_receive(record):  # final_fate, the policy read lazily
            fate = "dead_lettered"
        reason = next((o.reason for o in outcomes if not o.ok), "")
        if fate == "dead_lettered":
            fate, reason = await self._dead_letter(record, outcomes)
        result = RecordResult(record, fate, outcomes, reason)
        self._record(result, items, (time.perf_counter() - started) * 1000)
        return result

    async def _dead_letter(self, record: BatchRecord, outcomes: Sequence[Outcome]) -> tuple[Fate, str]:
        if self._dlq is None:
            # Leave it to the queue's redrive policy (maxReceiveCount), as the service does.
            reason = dead_letter_attributes(record.name, outcomes)["thumbx-reason"]
            log.warning("no_dlq_configured", record=record.name, reason=reason)
            return "retry", NO_DLQ_CONFIGURED.slug
        try:
            return "dead_lettered", await send_dead_letter(
                self._dlq,
                record.body,
                record.name,
                outcomes,
                self._metrics,
                receive_count=record.receive_count if record.message_id else None,
            )
        except ThumbxError as exc:
            log.warning("dead_letter_failed", record=record.name, error=str(exc), reason=exc.reason)
            return "retry", exc.reason

    def _record(self, result: RecordResult, items: Sequence[object], elapsed_ms: float) -> None:
        record = result.record
        self._fates.settled(
            record.name,
            record.receive_count,
            result.fate,
            items,
            result.outcomes,
            elapsed_ms / 1000,
            sent_timestamp=record.sent_timestamp,
        )
