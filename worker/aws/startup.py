"""Start-up that waits instead of crashing: retry a step (AssumeRole, the first queue call) until it works.

A worker started before STS, the trust policy or ThumbXRole is in place (the first deploy, a wrong ARN, an
outage) must not exit: on ECS that is a crash loop. :func:`until_ready` retries one step with capped
exponential backoff and jitter (botocore's own ``ExponentialBackoff``), logs one JSON line per failed
attempt with its reason, reports the wait to whoever asks (``/readyz`` answers 503 meanwhile, ``/healthz``
stays alive), and gives up only when told to stop (SIGTERM) or, for the Lambda shim, after one attempt.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from botocore.retries.standard import ExponentialBackoff, RetryContext

from worker.core.errors import ThumbxError

log = structlog.get_logger(__name__)
T = TypeVar("T")


class StartupAborted(Exception):
    """Stop was requested while start-up was still waiting for its dependencies."""


@dataclass(frozen=True)
class StartupPolicy:
    """``forever``: the ECS service (retry until it works or stop is set); else one attempt (Lambda)."""

    forever: bool = True
    max_backoff: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1``: 2^(attempt-1) capped, jitter in [50%, 100%]."""
        backoff = ExponentialBackoff(max_backoff=self.max_backoff, random=lambda: random.uniform(0.5, 1.0))
        return float(backoff.delay_amount(RetryContext(attempt_number=attempt)))


ONE_ATTEMPT = StartupPolicy(forever=False)


@dataclass
class StartupState:
    """What start-up is waiting for (None once ready): /readyz reports it, the ticks keep /healthz alive."""

    waiting_for: str | None = "start-up"
    attempts: int = 0
    on_tick: list[Callable[[], None]] = field(default_factory=list)

    def tick(self) -> None:
        for callback in self.on_tick:
            callback()


async def until_ready(
    step: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: StartupPolicy,
    state: StartupState,
    stop: asyncio.Event | None = None,
    **context: object,
) -> T:
    """Run ``attempt`` until it returns; a ThumbxError is logged and retried (``policy``), others propagate.

    Raises :class:`StartupAborted` when ``stop`` is set meanwhile (an attempt in flight is cancelled), or
    the ThumbxError itself when ``policy`` allows one attempt only.
    """
    stop = stop or asyncio.Event()
    stop_wait = asyncio.ensure_future(stop.wait())
    try:
        n = 0
        while True:
            n += 1
            state.attempts += 1
            state.tick()
            task = asyncio.ensure_future(attempt())
            await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise StartupAborted(step)
            try:
                return task.result()
            except ThumbxError as exc:
                if not policy.forever:
                    raise
                delay = policy.delay(n)
                state.waiting_for = f"{step}: {exc.reason}: {exc}"
                log.warning(
                    "startup_waiting",
                    step=step,
                    attempt=n,
                    reason=exc.reason,
                    error=str(exc),
                    retry_in_s=round(delay, 2),
                    **context,
                )
            deadline = asyncio.get_running_loop().time() + delay
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                await asyncio.wait({stop_wait}, timeout=min(1.0, left))  # tick every second: alive
                state.tick()
                if stop_wait.done():
                    raise StartupAborted(step)
    finally:
        stop_wait.cancel()
