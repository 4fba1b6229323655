"""The fate of one queued message, shared by the service's consumer and the Lambda shim
(via worker.runtime.batch).

* :data:`Fate` — what became of a message: ``done`` (acknowledged), ``dead_lettered`` (sent to the DLQ by
  thumbx, then acknowledged), ``retry`` (left for redelivery), ``unstarted`` (the Lambda time guard or FIFO
  order stopped it before it began; redelivered). Which one follows from the outcomes of its records
  (:func:`worker.runtime.dead_letter.final_fate`); the consumer's queue actions are the same fates in the
  queue's words (:data:`QUEUE_WORDS`: ``delete`` / ``dead_letter`` / ``retry``).
* :data:`REASONS` — every reason slug a fate, an outcome or a dead-letter attribute carries, with whether
  it is permanent: the error classes' (worker.core.errors) and the few no error raises
  (:data:`UNEXPECTED`, ...).
* :class:`FateObserver` — the one place a settled message is counted (``thumbx_records_*``, render,
  end-to-end and message latencies) and logged (``message_done``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import structlog

from worker.core import errors
from worker.core.events import ObjectRef

if TYPE_CHECKING:
    from worker.observability.telemetry import Metrics
    from worker.runtime.pipeline import Outcome

log = structlog.get_logger(__name__)

Fate = Literal["done", "dead_lettered", "retry", "unstarted"]
QUEUE_WORDS: Mapping[Fate, str] = {
    "done": "delete",
    "dead_lettered": "dead_letter",
    "retry": "retry",
    "unstarted": "retry",
}


@dataclass(frozen=True)
class Reason:
    """A reason slug (logs, metric labels, ``thumbx-reason``) and whether retrying can help."""

    slug: str
    permanent: bool

    def __str__(self) -> str:
        return self.slug


# Reasons no ThumbxError class carries.
UNEXPECTED = Reason("unexpected", permanent=False)  # a bug or an unmapped error: retried, never lost
TIME_GUARD = Reason("time_guard", permanent=False)  # Lambda: too little time left to start a record
FIFO_ORDER = Reason("fifo_order", permanent=False)  # Lambda FIFO: after a record that is retried
NO_DLQ_CONFIGURED = Reason("no_dlq_configured", permanent=False)  # left for the redrive policy
OUTPUT_PREFIX = Reason("output_prefix", permanent=True)  # loop guard: a key under the output prefix
OWN_OUTPUT = Reason("own_output", permanent=True)  # loop guard: an object carrying our output mark
CREDENTIALS_UNAVAILABLE = Reason(
    errors.CredentialsUnavailable.reason, errors.CredentialsUnavailable.permanent
)

LOOP_GUARD_REASONS = frozenset({OUTPUT_PREFIX.slug, OWN_OUTPUT.slug})
CREDENTIAL_REASONS = frozenset({CREDENTIALS_UNAVAILABLE.slug})


def _error_classes(base: type[errors.ThumbxError]) -> Iterator[type[errors.ThumbxError]]:
    """``base`` and its subclasses defined in worker.core.errors (not import-order dependent)."""
    if base.__module__ == errors.__name__:
        yield base
    for sub in base.__subclasses__():
        yield from _error_classes(sub)


def _registry() -> dict[str, Reason]:
    reasons = [UNEXPECTED, TIME_GUARD, FIFO_ORDER, NO_DLQ_CONFIGURED, OUTPUT_PREFIX, OWN_OUTPUT]
    reasons += [Reason(cls.reason, cls.permanent) for cls in _error_classes(errors.ThumbxError)]
    registry: dict[str, Reason] = {}
    for reason in reasons:
        if registry.setdefault(reason.slug, reason) != reason:
            raise AssertionError(f"reason {reason.slug!r} is registered as permanent and as transient")
    return registry


REASONS: Mapping[str, Reason] = _registry()
"""Every reason slug of worker.core.errors and of this module, with its permanence."""


class FateObserver:
    """Counts and logs settled messages; ``words`` names the fates in the log (the consumer's queue words)."""

    def __init__(self, metrics: Metrics, *, words: Mapping[Fate, str] | None = None) -> None:
        self._metrics = metrics
        self._words = words

    def settled(
        self,
        message_id: str,
        receive_count: int,
        fate: Fate,
        items: Sequence[object],
        outcomes: Sequence[Outcome],
        elapsed_s: float,
        *,
        sent_timestamp: str | None = None,
    ) -> None:
        now = time.time()
        metrics = self._metrics
        for item, outcome in zip(items, outcomes, strict=True):
            metrics.inc("thumbx_records_total", status=outcome.status, reason=outcome.reason)
            if outcome.status == "succeeded":
                metrics.inc("thumbx_records_succeeded_total", reason=outcome.reason)
                latency = end_to_end_seconds(item, sent_timestamp, now)
                if latency is not None:
                    metrics.observe("thumbx_end_to_end_seconds", latency)
            elif outcome.status == "ignored":
                metrics.inc("thumbx_records_ignored_total", reason=outcome.reason)
                if outcome.reason in LOOP_GUARD_REASONS:
                    metrics.inc("thumbx_loop_guard_total", reason=outcome.reason)
            else:
                metrics.inc("thumbx_records_failed_total", reason=outcome.reason, kind=outcome.status)
            if "render" in outcome.timings_ms:
                metrics.observe("thumbx_render_seconds", outcome.timings_ms["render"] / 1000)
        metrics.observe("thumbx_message_seconds", elapsed_s)
        getattr(log, "info" if fate == "done" else "warning")(
            "message_done",
            message_id=message_id,
            fate=self._words[fate] if self._words else fate,
            receive_count=receive_count,
            elapsed_ms=round(elapsed_s * 1000, 1),
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


def end_to_end_seconds(item: object, sent_timestamp: str | None, now: float) -> float | None:
    """Upload (event time) or enqueue (SQS SentTimestamp, epoch milliseconds) to done, in seconds."""
    if isinstance(item, ObjectRef) and item.event_time:
        with contextlib.suppress(ValueError):
            return max(0.0, now - datetime.fromisoformat(item.event_time.replace("Z", "+00:00")).timestamp())
    if sent_timestamp and sent_timestamp.isdigit():
        return max(0.0, now - int(sent_timestamp) / 1000)
    return None
