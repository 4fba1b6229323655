"""Wiring: settings -> sessions -> clients -> pipeline -> consumer. What `python -m worker` runs.

The Lambda shim shares :func:`open_runtime` but never runs the consumer, the health server (aiohttp's web
server, prometheus_client) or the EMF reporter, so :func:`run` imports those itself: a cold Lambda
environment doesn't pay for them (``python -m bench.cold_import``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import aioboto3
import structlog
from aiobotocore.config import AioConfig

from worker.aws.credentials import CredentialStats, RefreshWindows, RoleSession, assumed_role_session
from worker.aws.s3 import S3Store
from worker.aws.sqs import SqsQueue
from worker.aws.startup import ONE_ATTEMPT, StartupAborted, StartupPolicy, StartupState, until_ready
from worker.core.config import Settings
from worker.core.errors import ConfigError, ThumbxError
from worker.core.redrive import RedrivePolicy
from worker.observability.telemetry import Metrics, log_loop_exception
from worker.runtime.pipeline import Pipeline, PipelineConfig, Renderer

if TYPE_CHECKING:
    from worker.runtime.consumer import OutcomeObserver
    from worker.runtime.leases import ConsumerConfig

log = structlog.get_logger(__name__)
T = TypeVar("T")


def client_config(max_pool: int) -> AioConfig:
    # botocore's standard retry mode: bounded retries with backoff for throttling and 5xx.
    return AioConfig(
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=max_pool,
        connect_timeout=5,
        read_timeout=30,
    )


@dataclass
class Runtime:
    """Everything a running worker holds; the Lambda shim builds the same thing once per environment."""

    settings: Settings
    pipeline: Pipeline
    queue: SqsQueue
    dlq: SqsQueue | None
    role: RoleSession | None
    metrics: Metrics
    executor: ThreadPoolExecutor
    redrive: RedrivePolicy | None = None  # the source queue's, read at start-up (or on first need)
    redrive_known: bool = False

    async def redrive_policy(self) -> RedrivePolicy | None:
        """The source queue's redrive policy: read at start-up, else on the first call that needs it
        (the Lambda shim: an environment that only acknowledges records makes no AWS call for it).
        A failed read is logged and answered None (only permanent failures are dead-lettered then)."""
        if not self.redrive_known:
            try:
                self.redrive = await self.queue.redrive_policy()
            except ThumbxError as exc:
                log.warning("redrive_policy_unknown", queue_url=self.queue.url, error=str(exc))
                return None
            self.redrive_known = True
        return self.redrive


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    base_session: aioboto3.Session | None = None,
    windows: RefreshWindows | None = None,
    metrics: Metrics | None = None,
    renderer: Renderer | None = None,
    startup: StartupPolicy = ONE_ATTEMPT,
    state: StartupState | None = None,
    stop: asyncio.Event | None = None,
    stats: CredentialStats | None = None,
    read_redrive: bool = True,
) -> AsyncIterator[Runtime]:
    """Assume the role and read the queue's redrive policy (each step retried per ``startup``, until
    ``stop``: :class:`StartupAborted`), then open the clients, the render pool and the pipeline.
    ``read_redrive=False`` (Lambda): no queue call at start-up, see :meth:`Runtime.redrive_policy`."""
    base = base_session or aioboto3.Session(region_name=settings.region)
    config = client_config(max(10, settings.concurrency * 4))
    metrics = metrics or Metrics()
    state = state or StartupState()
    role: RoleSession | None = None
    role_arn = settings.role.role_arn if settings.role else None

    async def wait(step: str, attempt: Callable[[], Awaitable[T]]) -> T:
        return await until_ready(step, attempt, policy=startup, state=state, stop=stop, role_arn=role_arn)

    if settings.role is not None:
        role_settings = settings.role
        role = await assumed_role_session(
            base,
            role_settings,
            region=settings.region,
            endpoint_url=settings.endpoint_url,
            windows=windows,
            sts_config=config,
            metrics=metrics,
            stats=stats,
            first=lambda fetch: wait("assume_role", fetch),
        )
    storage_session = role.session if role else base
    queue_session = role.session if (role and settings.queue_credentials == "storage") else base
    client_args: dict[str, Any] = {
        "region_name": settings.region,
        "endpoint_url": settings.endpoint_url,
        "config": config,
    }
    executor = ThreadPoolExecutor(max_workers=settings.render_threads, thread_name_prefix="render")
    try:
        async with (
            storage_session.client("s3", **client_args) as s3,
            queue_session.client("sqs", **client_args) as sqs,
        ):
            queue = SqsQueue(sqs, settings.queue_url)
            # The first call with the queue credentials: proves the role (and its trust) works, and tells
            # which receive is the last before the redrive policy moves a message
            # (worker.runtime.dead_letter).
            redrive = await wait("queue", queue.redrive_policy) if read_redrive else None
            state.waiting_for = None
            if read_redrive:
                log.info(
                    "redrive_policy",
                    max_receive_count=redrive.max_receive_count if redrive else None,
                    dead_letter_target=redrive.dead_letter_target_arn if redrive else None,
                )
            pipeline = Pipeline(
                S3Store(s3),
                PipelineConfig(
                    buckets=frozenset({settings.bucket}),
                    layout=settings.layout,
                    presets=settings.presets,
                    limits=settings.limits,
                    manifest=settings.manifest,
                ),
                executor=executor,
                **({"renderer": renderer} if renderer is not None else {}),
            )
            yield Runtime(
                settings=settings,
                pipeline=pipeline,
                queue=queue,
                dlq=SqsQueue(sqs, settings.dlq_url) if settings.dlq_url else None,
                role=role,
                metrics=metrics,
                executor=executor,
                redrive=redrive,
                redrive_known=read_redrive,
            )
    finally:
        # Don't wait for a render abandoned at the shutdown deadline: its message is already back on the
        # queue (see Consumer._shutdown); `thumbx worker` exits without joining that thread.
        executor.shutdown(wait=False, cancel_futures=True)


def consumer_config(settings: Settings) -> ConsumerConfig:
    from worker.runtime.leases import ConsumerConfig

    return ConsumerConfig(
        concurrency=settings.concurrency,
        wait_seconds=settings.wait_seconds,
        visibility_timeout=settings.visibility_timeout,
        retry_base_seconds=settings.retry_base_seconds,
        shutdown_seconds=settings.shutdown_seconds,
        max_extend_seconds=settings.max_extend_seconds,
    )


async def run(
    settings: Settings,
    *,
    base_session: aioboto3.Session | None = None,
    stop: asyncio.Event | None = None,
    windows: RefreshWindows | None = None,
    observer: OutcomeObserver | None = None,
    metrics: Metrics | None = None,
    handle_signals: bool = False,
    renderer: Renderer | None = None,
    on_health_port: Callable[[int], None] | None = None,
) -> None:
    """Run the worker until ``stop`` is set (or SIGTERM/SIGINT when ``handle_signals``).

    On stop: no more receives, in-flight work gets ``settings.shutdown_seconds`` to finish, unfinished
    messages go back to the queue at once, deletes are flushed; then this returns.
    """
    from worker.observability.emf import EmfReporter
    from worker.observability.health import HealthProbe, HealthServer
    from worker.runtime.consumer import Consumer
    from worker.runtime.leases import ConsumerStatus

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, _stopper(stop, sig))
    loop.set_exception_handler(log_loop_exception)
    config = consumer_config(settings)
    metrics = metrics or Metrics()
    status = ConsumerStatus()
    state = StartupState(on_tick=[lambda: setattr(status, "last_tick", time.monotonic())])
    stats = CredentialStats() if settings.role else None
    async with contextlib.AsyncExitStack() as stack:
        if settings.health_port is not None:
            # Up before start-up waits for credentials: alive (the wait ticks), not ready (it says why).
            probe = HealthProbe(
                status,
                stats,
                liveness_seconds=config.wait_seconds + config.pause_max_seconds + 30,
                startup=state,
            )
            server = HealthServer(probe, metrics, host=settings.health_host, port=settings.health_port)
            try:
                port = await server.start()
            except OSError as exc:  # taken since `thumbx worker` checked it: healthcheck would ask another
                raise ConfigError(
                    f"THUMBX_HEALTH_PORT: cannot listen on {settings.health_host}:{settings.health_port} "
                    f"({exc.strerror or exc}); e.g. THUMBX_HEALTH_PORT=8081 (0: any free port, off: none)"
                ) from None
            stack.push_async_callback(server.stop)
            if on_health_port is not None:
                on_health_port(port)
        try:
            rt = await stack.enter_async_context(
                open_runtime(
                    settings,
                    base_session=base_session,
                    windows=windows,
                    metrics=metrics,
                    renderer=renderer,
                    startup=StartupPolicy(forever=True, max_backoff=config.pause_max_seconds),
                    state=state,
                    stop=stop,
                    stats=stats,
                )
            )
        except StartupAborted as exc:
            log.info("worker_stopped", during_startup=str(exc))
            return
        gate = rt.role.credentials.get_frozen_credentials if rt.role else None
        consumer = Consumer(
            rt.queue,
            rt.pipeline,
            config,
            metrics=rt.metrics,
            dead_letters=rt.dlq,
            observer=observer,
            gate=gate,
            redrive=rt.redrive,
            status=status,
        )
        if settings.emf_seconds > 0:
            reporter = asyncio.create_task(EmfReporter(rt.metrics).run(settings.emf_seconds))
            stack.push_async_callback(_cancel, reporter)
        log.info(
            "worker_started",
            queue_url=settings.queue_url,
            bucket=settings.bucket,
            role_arn=settings.role.role_arn if settings.role else None,
            presets=[p.name for p in settings.presets],
            concurrency=settings.concurrency,
            shutdown_seconds=settings.shutdown_seconds,
        )
        await consumer.run(stop)
        log.info("worker_stopped")


def _stopper(stop: asyncio.Event, sig: signal.Signals) -> Callable[[], None]:
    def handler() -> None:
        if not stop.is_set():
            log.info("stop_requested", signal=sig.name)
        stop.set()

    return handler


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
