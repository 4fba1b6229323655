"""What the consumer holds and for how long: its timeouts, each held message's lease, the backoffs (pure).

* :class:`ConsumerConfig` — concurrency, long-poll wait, visibility timeout, retry and pause backoff caps,
  delete batching delay, shutdown deadline, heartbeat cap.
* :class:`Lease` — one held message: received when, visible until when, settled or not.
* :func:`extension_due` — the heartbeat's rule: extend when half the visibility timeout is left, up to a cap.
* :func:`retry_delay`, :func:`pause_seconds` — visibility backoff of a transient failure, receive pause.
* :class:`ConsumerStatus` — what /healthz and /readyz read; :class:`ReceivePause` keeps its receive state.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from worker.aws.sqs import Message
from worker.core.errors import ThumbxError


@dataclass(frozen=True)
class ConsumerConfig:
    concurrency: int = 4
    wait_seconds: int = 20
    visibility_timeout: int = 60
    retry_base_seconds: int = 10
    retry_max_seconds: int = 900
    delete_batch_delay: float = 0.2  # acks wait this long to share a DeleteMessageBatch
    shutdown_seconds: float = 25.0
    max_extend_seconds: int = 3600
    pause_max_seconds: float = 30.0

    @property
    def heartbeat_interval(self) -> float:
        return max(0.5, self.visibility_timeout / 4)


def retry_delay(receive_count: int, config: ConsumerConfig) -> int:
    """Visibility backoff for a transient failure: base * 2^(n-1), capped, with a little jitter."""
    delay = config.retry_base_seconds * 2 ** max(0, min(receive_count - 1, 16))
    jitter = random.uniform(0.8, 1.2)
    return int(min(config.retry_max_seconds, delay * jitter))


def pause_seconds(failures: int, cap: float) -> float:
    """Backoff while receiving is impossible: 0.5 s doubling per failure, capped, jitter in [50%, 100%]."""
    return float(min(cap, 0.5 * 2.0 ** min(failures, 16)) * random.uniform(0.5, 1.0))


def extension_due(lease: Lease, now: float, config: ConsumerConfig, *, early: float = 0.0) -> int | None:
    """Seconds to extend ``lease``'s visibility by now, or None (not due yet, or past the cap).

    Due when half the visibility timeout is left (``early`` seconds sooner when joining a batch anyway).
    """
    if lease.visible_until - now > config.visibility_timeout / 2 + early:
        return None
    left_under_cap = lease.received_at + config.max_extend_seconds - now
    if left_under_cap <= 0:
        return None
    return int(max(1, min(config.visibility_timeout, left_under_cap)))


@dataclass
class Lease:
    """A message this worker holds: when it was received, when it would reappear, whether it is settled."""

    message: Message
    received_at: float
    visible_until: float
    settled: bool = False  # fate decided: the heartbeat and the shutdown release leave it alone
    capped: bool = False
    task: asyncio.Task[None] | None = None


@dataclass
class ConsumerStatus:
    """What /healthz and /readyz read."""

    last_tick: float = field(default_factory=time.monotonic)
    last_receive_ok: float | None = None
    last_receive_error: str | None = None
    paused_until: float = 0.0
    draining: bool = False


class ReceivePause:
    """Receiving held after failures (exponential backoff, jitter), released by a receive that worked."""

    def __init__(self, status: ConsumerStatus, cap: float) -> None:
        self.status = status
        self.cap = cap
        self.failures = 0

    def received(self) -> None:
        self.failures = 0
        self.status.last_receive_ok = time.monotonic()
        self.status.last_receive_error = None

    def failed(self, exc: ThumbxError) -> float:
        """One more failed receive: the seconds to pause for (recorded in the status)."""
        self.failures += 1
        pause = pause_seconds(self.failures, self.cap)
        self.status.last_receive_error = f"{exc.reason}: {exc}"
        self.status.paused_until = time.monotonic() + pause
        return pause

    def trip(self) -> None:
        """A job failed for want of credentials: hold receiving too, so queued messages keep their counts."""
        self.failures = max(self.failures, 1)
        pause = pause_seconds(self.failures, self.cap)
        self.status.paused_until = max(self.status.paused_until, time.monotonic() + pause)
