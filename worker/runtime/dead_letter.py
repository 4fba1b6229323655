"""The dead-letter decision the ECS service and the Lambda shim share: which failed messages thumbx sends to
the DLQ itself, and the attributes they carry.

A message is dead-lettered by thumbx (with ``thumbx-reason`` / ``thumbx-detail``, then deleted) when

* a record failed permanently (retrying cannot help), or
* it failed in any way on its *last* receive: the one after which the queue's redrive policy would move
  it to the DLQ on the next receive, silently (``ApproximateReceiveCount >= maxReceiveCount``). A
  transient failure then carries the transient's reason, an unexpected error ``unexpected``.

The redrive policy is read from the source queue once at start-up
(:func:`worker.core.redrive.parse_redrive`); without one
(or when it could not be read) only permanent failures are dead-lettered here. Pure: no I/O but the
``sink.send`` of :func:`send_dead_letter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from worker.core.redrive import RedrivePolicy
from worker.runtime.fate import UNEXPECTED, Fate

if TYPE_CHECKING:
    from worker.observability.telemetry import Metrics
    from worker.runtime.pipeline import Outcome


class DeadLetterSink(Protocol):
    async def send(self, body: str, attributes: dict[str, str] | None = None) -> str: ...


def is_last_receive(receive_count: int, redrive: RedrivePolicy | None) -> bool:
    return redrive is not None and redrive.is_last_receive(receive_count)


def fate_of(outcomes: Sequence[Outcome]) -> Fate:
    """Any transient failure -> retry; else any permanent failure -> dead-letter; else done."""
    if any(o.status == "transient" for o in outcomes):
        return "retry"
    if any(o.status == "permanent" for o in outcomes):
        return "dead_lettered"
    return "done"


def final_fate(outcomes: Sequence[Outcome], receive_count: int, redrive: RedrivePolicy | None) -> Fate:
    """:func:`fate_of`, except that a retry on the last receive is dead-lettered (with its reason) now."""
    fate = fate_of(outcomes)
    if fate == "retry" and is_last_receive(receive_count, redrive):
        return "dead_lettered"
    return fate


def dead_letter_attributes(
    message_id: str, outcomes: Sequence[Outcome], *, receive_count: int | None = None
) -> dict[str, str]:
    """The message attributes a dead-lettered body carries: the first permanent failure's reason, detail
    and key (or, on a last receive without one, the first transient failure's), which of the body's
    records failed, the original message id and, when known, the receive count it failed on."""
    failed = [i for i, o in enumerate(outcomes) if o.status == "permanent"]
    if not failed:
        failed = [i for i, o in enumerate(outcomes) if o.status == "transient"]
    first = outcomes[failed[0]]
    attributes = {
        "thumbx-reason": first.reason,
        "thumbx-detail": first.detail or first.reason,
        "thumbx-key": first.key or "-",
        "thumbx-failed-record-indexes": ",".join(str(i) for i in failed),
        "thumbx-records": str(len(outcomes)),
        "thumbx-source-message-id": message_id,
    }
    if receive_count is not None:
        attributes["thumbx-receive-count"] = str(receive_count)
    return attributes


def unexpected_attributes(message_id: str, exc: BaseException, receive_count: int) -> dict[str, str]:
    """Attributes for a body whose handling raised (a bug) on its last receive."""
    return {
        "thumbx-reason": UNEXPECTED.slug,
        "thumbx-detail": f"{type(exc).__name__}: {exc}",
        "thumbx-key": "-",
        "thumbx-source-message-id": message_id,
        "thumbx-receive-count": str(receive_count),
    }


async def send_dead_letter(
    sink: DeadLetterSink,
    body: str,
    source_id: str,
    outcomes: Sequence[Outcome],
    metrics: Metrics,
    *,
    receive_count: int | None = None,
) -> str:
    """Send a failed body to the DLQ with :func:`dead_letter_attributes`, count each failed reference,
    and return the reason; the sink's ThumbxError propagates (nothing counted)."""
    attributes = dead_letter_attributes(source_id, outcomes, receive_count=receive_count)
    await sink.send(body, attributes)
    counted = {int(i) for i in attributes["thumbx-failed-record-indexes"].split(",")}
    for index in sorted(counted):
        metrics.inc("thumbx_messages_dead_lettered_total", reason=outcomes[index].reason)
    return attributes["thumbx-reason"]


async def send_unexpected(
    sink: DeadLetterSink, body: str, source_id: str, exc: BaseException, receive_count: int, metrics: Metrics
) -> str:
    """Dead-letter a body whose handling raised on its last receive (reason ``unexpected``)."""
    await sink.send(body, unexpected_attributes(source_id, exc, receive_count))
    metrics.inc("thumbx_messages_dead_lettered_total", reason=UNEXPECTED.slug)
    return UNEXPECTED.slug
