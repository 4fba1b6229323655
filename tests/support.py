"""Helpers shared by the tests: the shared data folder, sample images, an in-process worker."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioboto3
from PIL import Image

from worker.aws.credentials import RefreshWindows
from worker.aws.sqs import Message
from worker.core.config import Settings, load_settings
from worker.observability.telemetry import Metrics
from worker.ops.provision import Deployment
from worker.runtime import service
from worker.runtime.pipeline import Outcome, Renderer

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """../shared beside the checkout (CI has it), or THUMBX_SHARED, or /work/shared."""
    for candidate in (os.environ.get("THUMBX_SHARED"), REPO.parent / "shared", Path("/work/shared")):
        if candidate and Path(candidate, "DESIGN.md").exists():
            return Path(candidate)
    return None


def jpeg_bytes(
    width: int = 640, height: int = 480, *, orientation: int | None = None, color: Any = "red"
) -> bytes:
    image = Image.new("RGB", (width, height), color)
    out = io.BytesIO()
    if orientation is None:
        image.save(out, "JPEG", quality=85)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(out, "JPEG", quality=85, exif=exif.tobytes())
    return out.getvalue()


def worker_settings(deployment: Deployment, **overrides: str) -> Settings:
    env = (
        deployment.worker_env()
        | {"THUMBX_WAIT_SECONDS": "1", "THUMBX_CONCURRENCY": "4", "THUMBX_HEALTH_PORT": "0"}
        | overrides
    )
    return load_settings(env)


def worker_base_session(deployment: Deployment) -> aioboto3.Session:
    return aioboto3.Session(
        aws_access_key_id=deployment.worker_keys.access_key_id,
        aws_secret_access_key=deployment.worker_keys.secret_access_key,
        region_name=deployment.region,
    )


@dataclass
class RunningWorker:
    metrics: Metrics
    outcomes: list[Outcome] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    health_port: int | None = None

    def outcome_for(self, key: str) -> Outcome | None:
        return next((o for o in self.outcomes if o.key == key), None)


@contextlib.asynccontextmanager
async def running_worker(
    deployment: Deployment,
    *,
    settings: Settings | None = None,
    windows: RefreshWindows | None = None,
    base_session: aioboto3.Session | None = None,
    renderer: Renderer | None = None,
) -> AsyncIterator[RunningWorker]:
    """Run the real service in this event loop as account A's worker; stop it on exit."""
    state = RunningWorker(metrics=Metrics())

    def observe(message: Message, outcomes: Sequence[Outcome]) -> None:
        state.messages.append(message)
        state.outcomes.extend(outcomes)

    stop = asyncio.Event()
    task = asyncio.create_task(
        service.run(
            settings or worker_settings(deployment),
            base_session=base_session or worker_base_session(deployment),
            stop=stop,
            windows=windows,
            observer=observe,
            metrics=state.metrics,
            renderer=renderer,
            on_health_port=lambda port: setattr(state, "health_port", port),
        )
    )
    try:
        yield state
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
