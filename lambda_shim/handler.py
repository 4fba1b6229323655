"""AWS Lambda entry point: adapts SQS, S3 and EventBridge events to the worker's processing core.

Built once per execution environment, on the first invocation, and reused while the environment is warm:
the settings, the assumed-role session with its self-refreshing credentials, the S3/SQS clients, the
render pool, and the one event loop they are bound to. Records then go through
:mod:`worker.runtime.batch`, the
same pipeline the ECS service runs; only the acknowledgement differs:

* SQS events return ``{"batchItemFailures": [...]}`` naming the records to retry (the event source
  mapping must enable ``ReportBatchItemFailures``); permanent failures go to the DLQ and are not named.
* Direct S3 / EventBridge events return counts, or raise when a record must be retried (Lambda's
  asynchronous retries then replay the event; writes are idempotent).

After each invocation the metrics it changed are printed to stdout as one CloudWatch EMF document
(:class:`worker.observability.emf.EmfReporter`, dimension ``Service=thumbx-lambda``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import structlog

from worker.aws import attribution
from worker.core.config import load_settings
from worker.core.environ import warnings
from worker.core.errors import TransientError
from worker.observability.telemetry import configure_logging, log_loop_exception
from worker.runtime.batch import BatchProcessor, BatchRecord, BatchReport, BatchSettings, RemainingMillis
from worker.runtime.service import Runtime, open_runtime

if TYPE_CHECKING:
    from worker.observability.emf import EmfReporter


class Environment:
    """What one execution environment keeps between invocations: a loop and the runtime opened on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(log_loop_exception)  # one JSON line, not a bare traceback
        self.runtime: Runtime | None = None
        self._processor: BatchProcessor | None = None
        self._emf: EmfReporter | None = None
        self._stack = contextlib.AsyncExitStack()

    def process(
        self,
        records: Sequence[BatchRecord],
        remaining: RemainingMillis | None,
        fifo: bool,
        request_id: str | None = None,
    ) -> BatchReport:
        try:
            return self.loop.run_until_complete(self._process(records, remaining, fifo, request_id))
        finally:
            if self._emf is not None:
                self._emf.write()  # one EMF document per invocation

    async def _process(
        self,
        records: Sequence[BatchRecord],
        remaining: RemainingMillis | None,
        fifo: bool,
        request_id: str | None,
    ) -> BatchReport:
        if self._processor is None:
            from worker.observability.emf import (
                EmfReporter,  # with the first invocation, as the rest of the runtime
            )

            settings = load_settings()
            # thumbx-lambda-<environment id>: the session (and its source identity) of this environment
            settings = replace(settings, role=attribution.for_lambda(settings.role, os.environ, request_id))
            batch = BatchSettings.from_env(os.environ, settings.concurrency)
            configure_logging(settings.log_format, settings.log_level)
            for warning in warnings(os.environ):  # as `thumbx` prints them: unknown names, deprecated values
                structlog.get_logger(__name__).warning("config_warning", detail=warning)
            self.runtime = await self._stack.enter_async_context(open_runtime(settings, read_redrive=False))
            self._emf = EmfReporter(self.runtime.metrics, dimensions={"Service": "thumbx-lambda"})
            self._processor = BatchProcessor(
                self.runtime.pipeline,
                batch,
                dead_letters=self.runtime.dlq,
                metrics=self.runtime.metrics,
                redrive=self.runtime.redrive_policy,  # the last receive is dead-lettered with its reason
            )
        return await self._processor.process(records, remaining, ordered=fifo)

    def close(self) -> None:
        self.loop.run_until_complete(self._stack.aclose())
        self.loop.close()


_environment: Environment | None = None


def environment() -> Environment:
    global _environment
    if _environment is None:
        _environment = Environment()
    return _environment


def reset() -> None:
    """Forget the warm state (tests, benchmarks): the next invocation initialises afresh."""
    global _environment
    if _environment is not None:
        _environment.close()
        _environment = None


def handler(event: Any, context: Any) -> dict[str, Any]:
    remaining: RemainingMillis | None = getattr(context, "get_remaining_time_in_millis", None)
    request_id = str(getattr(context, "aws_request_id", "") or "local")
    records = event.get("Records") if isinstance(event, Mapping) else None
    with structlog.contextvars.bound_contextvars(aws_request_id=request_id):
        if isinstance(records, list) and records and all(_is_sqs(r) for r in records):
            fifo = any(str(r.get("eventSourceARN", "")).endswith(".fifo") for r in records)
            report = environment().process([_sqs_record(r) for r in records], remaining, fifo, request_id)
            return {"batchItemFailures": report.item_failures()}
        report = environment().process(_direct_records(event, request_id), remaining, False, request_id)
        if report.retry:
            reasons = sorted({r.reason for r in report.retry})
            raise TransientError(f"{len(report.retry)} record(s) to retry: {', '.join(reasons)}")
        return {"counts": report.counts}


def _is_sqs(record: Any) -> bool:
    return isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs"


def _sqs_record(record: Mapping[str, Any]) -> BatchRecord:
    message_id, body = record.get("messageId"), record.get("body")
    attributes = record.get("attributes")
    attributes = attributes if isinstance(attributes, Mapping) else {}
    count = str(attributes.get("ApproximateReceiveCount", "1"))
    sent = attributes.get("SentTimestamp")
    return BatchRecord(
        body=body if isinstance(body, str) else "",
        message_id=message_id if isinstance(message_id, str) and message_id else None,
        receive_count=int(count) if count.isdigit() else 1,
        sent_timestamp=sent if isinstance(sent, str) else None,
    )


def _direct_records(event: Any, request_id: str) -> list[BatchRecord]:
    """One record per S3 notification record (so each dead-letters alone), or the whole event."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if isinstance(records, list) and records:
        return [
            BatchRecord(json.dumps({"Records": [r]}), label=f"{request_id}#{i}")
            for i, r in enumerate(records)
        ]
    return [BatchRecord(json.dumps(event), label=request_id)]
