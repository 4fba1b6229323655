"""Wiring: settings -> sessions -> clients -> pipeline -> consumer. What `python -m worker` runs."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import aioboto3
import structlog
from aiobotocore.config import AioConfig

from worker.config import Settings
from worker.consumer import Consumer, ConsumerConfig, OutcomeObserver
from worker.credentials import RefreshWindows, RoleSession, assumed_role_session
from worker.observability import Metrics
from worker.pipeline import Pipeline, PipelineConfig
from worker.queue import SqsQueue
from worker.storage import S3Store

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
                    buckets=frozenset({settings.bucket}), layout=settings.layout, presets=settings.presets
                ),
                executor=executor,
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
        executor.shutdown(wait=True, cancel_futures=True)


async def run(
    settings: Settings,
    *,
    base_session: aioboto3.Session | None = None,
    stop: asyncio.Event | None = None,
    windows: RefreshWindows | None = None,
    observer: OutcomeObserver | None = None,
    metrics: Metrics | None = None,
    handle_signals: bool = False,
) -> None:
    """Run the worker until ``stop`` is set (or SIGTERM/SIGINT when ``handle_signals``)."""
    stop = stop or asyncio.Event()
    if handle_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    async with open_runtime(settings, base_session=base_session, windows=windows, metrics=metrics) as rt:
        consumer = Consumer(
            rt.queue,
            rt.pipeline,
            ConsumerConfig(
                concurrency=settings.concurrency,
                wait_seconds=settings.wait_seconds,
                visibility_timeout=settings.visibility_timeout,
            ),
            metrics=rt.metrics,
            dead_letters=rt.dlq,
            observer=observer,
        )
        log.info(
            "worker_started",
            queue_url=settings.queue_url,
            bucket=settings.bucket,
            role_arn=settings.role.role_arn if settings.role else None,
            presets=[p.name for p in settings.presets],
            concurrency=settings.concurrency,
        )
        await consumer.run(stop)
        log.info("worker_stopped")
