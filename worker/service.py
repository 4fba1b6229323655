"""Wiring: settings -> sessions -> clients -> pipeline -> consumer. What `python -m worker` runs.

The Lambda shim shares :func:`open_runtime` but never runs the consumer, the health server (aiohttp's web
server, prometheus_client) or the EMF reporter, so :func:`run` imports those itself: a cold Lambda
environment doesn't pay for them (``python -m bench.cold_import``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aioboto3
import structlog
from aiobotocore.config import AioConfig

from worker.config import Settings
from worker.credentials import RefreshWindows, RoleSession, assumed_role_session
from worker.observability import Metrics
from worker.pipeline import Pipeline, PipelineConfig, Renderer
from worker.queue import SqsQueue
from worker.storage import S3Store

if TYPE_CHECKING:
    from worker.consumer import ConsumerConfig, OutcomeObserver

log = structlog.get_logger(__name__)


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


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    base_session: aioboto3.Session | None = None,
    windows: RefreshWindows | None = None,
    metrics: Metrics | None = None,
    renderer: Renderer | None = None,
) -> AsyncIterator[Runtime]:
    base = base_session or aioboto3.Session(region_name=settings.region)
    config = client_config(max(10, settings.concurrency * 4))
    metrics = metrics or Metrics()
    role: RoleSession | None = None
    if settings.role is not None:
        role = await assumed_role_session(
            base,
            settings.role,
            region=settings.region,
            endpoint_url=settings.endpoint_url,
            windows=windows,
            sts_config=config,
            metrics=metrics,
        )
    storage_session = role.session if role else base
    queue_session = role.session if (role and settings.queue_credentials == "role") else base
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
            pipeline = Pipeline(
                S3Store(s3),
                PipelineConfig(
                    buckets=frozenset({settings.bucket}),
                    layout=settings.layout,
                    presets=settings.presets,
                    limits=settings.limits,
                ),
                executor=executor,
                **({"renderer": renderer} if renderer is not None else {}),
            )
            yield Runtime(
                settings=settings,
                pipeline=pipeline,
                queue=SqsQueue(sqs, settings.queue_url),
                dlq=SqsQueue(sqs, settings.dlq_url) if settings.dlq_url else None,
                role=role,
                metrics=metrics,
                executor=executor,
            )
    finally:
        # Don't wait for a render abandoned at the shutdown deadline: its message is already back on the
        # queue (see Consumer._shutdown); `thumbx worker` exits without joining that thread.
        executor.shutdown(wait=False, cancel_futures=True)


def consumer_config(settings: Settings) -> ConsumerConfig:
    from worker.consumer import ConsumerConfig

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
    from worker.consumer import Consumer
    from worker.emf import EmfReporter
    from worker.health import HealthProbe, HealthServer

    stop = stop or asyncio.Event()
    if handle_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, _stopper(stop, sig))
    async with (
        open_runtime(
            settings, base_session=base_session, windows=windows, metrics=metrics, renderer=renderer
        ) as rt,
        contextlib.AsyncExitStack() as stack,
    ):
        config = consumer_config(settings)
        gate = rt.role.credentials.get_frozen_credentials if rt.role else None
        consumer = Consumer(
            rt.queue,
            rt.pipeline,
            config,
            metrics=rt.metrics,
            dead_letters=rt.dlq,
            observer=observer,
            gate=gate,
        )
        if settings.health_port is not None:
            probe = HealthProbe(
                consumer.status,
                rt.role.stats if rt.role else None,
                liveness_seconds=config.wait_seconds + config.pause_max_seconds + 30,
            )
            server = HealthServer(probe, rt.metrics, host=settings.health_host, port=settings.health_port)
            try:
                port = await server.start()
            except OSError as exc:  # keep consuming; the failing health check will say so
                log.error("health_server_failed", port=settings.health_port, error=str(exc))
            else:
                stack.push_async_callback(server.stop)
                if on_health_port is not None:
                    on_health_port(port)
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
