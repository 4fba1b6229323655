"""One job: get the source -> render every preset (in a thread pool) -> put every thumbnail.

Returns an :class:`Outcome` instead of raising, so the consumer and the Lambda shim decide the message's
fate from one value: succeeded, ignored on purpose, failed permanently (dead-letter) or transiently (retry).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

import structlog

from worker.errors import ThumbxError, TransientError
from worker.events import Ignored, Item, ObjectRef, Rejected
from worker.imaging import DEFAULT_LIMITS, Limits, Rendition, render
from worker.keys import KeyLayout
from worker.presets import Preset
from worker.storage import ObjectStore

log = structlog.get_logger(__name__)

Status = Literal["succeeded", "ignored", "permanent", "transient"]
Renderer = Callable[[bytes, Sequence[Preset], Limits], list[Rendition]]


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str
    bucket: str = ""
    key: str = ""
    outputs: tuple[str, ...] = ()
    detail: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    source_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "ignored")


@dataclass(frozen=True)
class PipelineConfig:
    buckets: frozenset[str]
    layout: KeyLayout
    presets: tuple[Preset, ...]
    limits: Limits = DEFAULT_LIMITS


class Pipeline:
    def __init__(
        self,
        store: ObjectStore,
        config: PipelineConfig,
        executor: Executor | None = None,
        renderer: Renderer = render,
    ) -> None:
        self._store = store
        self._config = config
        self._executor = executor
        self._render = renderer

    async def process(self, item: Item) -> Outcome:
        if isinstance(item, Ignored):
            return Outcome("ignored", item.reason, detail=item.detail)
        if isinstance(item, Rejected):
            return Outcome("permanent", item.reason, detail=item.detail)
        return await self._process_object(item)

    async def _process_object(self, ref: ObjectRef) -> Outcome:
        if ref.bucket not in self._config.buckets:
            return Outcome("ignored", "foreign_bucket", ref.bucket, ref.key)
        refusal = self._config.layout.refusal(ref.key)
        if refusal is not None:
            return Outcome("ignored", refusal, ref.bucket, ref.key)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        try:
            source = await self._store.get(ref.bucket, ref.key)
            timings["get"] = _ms_since(started)
            mark = time.perf_counter()
            loop = asyncio.get_running_loop()
            renditions = await loop.run_in_executor(
                self._executor, self._render, source.data, self._config.presets, self._config.limits
            )
            timings["render"] = _ms_since(mark)
            mark = time.perf_counter()
            planned = {
                p.preset.name: p.key for p in self._config.layout.outputs(ref.key, self._config.presets)
            }
            metadata = {"thumbx-source-etag": source.etag, "thumbx-source-key": quote(ref.key, safe="/")}
            await asyncio.gather(
                *(
                    self._store.put(
                        ref.bucket,
                        planned[r.preset.name],
                        r.data,
                        content_type=r.content_type,
                        metadata={**metadata, "thumbx-preset": r.preset.name},
                    )
                    for r in renditions
                )
            )
            timings["put"] = _ms_since(mark)
        except ThumbxError as exc:
            timings["total"] = _ms_since(started)
            status: Status = "permanent" if exc.permanent else "transient"
            return Outcome(status, exc.reason, ref.bucket, ref.key, detail=str(exc), timings_ms=timings)
        except Exception as exc:  # a bug or an unmapped library error: retry rather than lose the message
            timings["total"] = _ms_since(started)
            log.exception("pipeline_unexpected_error", key=ref.key)
            err = TransientError(f"unexpected {type(exc).__name__}: {exc}", reason="unexpected")
            return Outcome("transient", err.reason, ref.bucket, ref.key, detail=str(err), timings_ms=timings)
        timings["total"] = _ms_since(started)
        return Outcome(
            "succeeded",
            "rendered",
            ref.bucket,
            ref.key,
            outputs=tuple(planned[r.preset.name] for r in renditions),
            timings_ms=timings,
            source_bytes=len(source.data),
        )


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
