"""One job: get the source -> render every preset (in a thread pool) -> put every thumbnail (+ manifest).

Events that name a ``versionId`` render exactly that version; events that carry a ``sequencer`` older
than the one recorded on the current outputs are acknowledged as ``stale_event`` (see worker.core.sequencer).

Returns an :class:`Outcome` instead of raising, so the consumer and the Lambda shim decide the message's
fate from one value: succeeded, ignored on purpose, failed permanently (dead-letter) or transiently (retry).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import structlog

from worker.aws.s3 import ObjectStore, StoredObject
from worker.core import freshness, manifest
from worker.core.budget import MemoryBusy, Reservation, budget_for, with_reservation
from worker.core.errors import ImageTooLarge, ObjectMissing, ThumbxError, TransientError
from worker.core.events import Ignored, Item, ObjectRef, Rejected
from worker.core.freshness import SOURCE_SEQUENCER, presets_fingerprint
from worker.core.keys import KeyLayout, PlannedOutput, check_metadata, source_key_digest
from worker.core.limits import READ_COPIES
from worker.core.presets import Preset
from worker.core.sequencer import is_stale
from worker.imaging import DEFAULT_LIMITS, Limits, Rendition, render
from worker.imaging.placeholder import SourceSummary, summarise
from worker.runtime.fate import OWN_OUTPUT, UNEXPECTED

log = structlog.get_logger(__name__)

Status = Literal["succeeded", "ignored", "permanent", "transient"]
Renderer = Callable[[bytes, Sequence[Preset], Limits], list[Rendition]]
OWN_OUTPUT_MARK = "thumbx-preset"  # metadata key every output carries; never present on an upload
Rendered = tuple[list[Rendition], SourceSummary | None]


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
    manifest: bool = False  # THUMBX_MANIFEST: write thumbnails/<path>/manifest.json, last


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
        self._fingerprint = presets_fingerprint(config.presets)
        self._budget = budget_for(config.limits.memory_budget_bytes)

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
            planned = self._config.layout.plan(ref.key, self._config.presets)
            manifest_key = self._config.layout.manifest_key(ref.key) if self._config.manifest else None
            outputs = tuple(p.key for p in planned) + ((manifest_key,) if manifest_key else ())
            check_metadata(self._metadata(ref.key, ref.etag or "", ref.version_id, ref.sequencer, planned))
            self._check_size(ref.size)
            ref = await self._identify(ref)
            marker = await self._marker(ref, manifest_key or planned[-1].key)
            recorded = marker.get(SOURCE_SEQUENCER) if marker is not None else None
            if is_stale(ref.sequencer, recorded):
                timings["total"] = _ms_since(started)
                log.info(
                    "stale_event",
                    key=ref.key,
                    sequencer=ref.sequencer,
                    rendered_sequencer=recorded,
                    version_id=ref.version_id,
                )
                return Outcome(
                    "ignored",
                    "stale_event",
                    ref.bucket,
                    ref.key,
                    detail=f"sequencer {ref.sequencer} is older than the rendered {recorded}",
                    timings_ms=timings,
                )
            if marker is not None and self._already_rendered(ref, marker, manifest=manifest_key is not None):
                timings["total"] = _ms_since(started)
                return Outcome(
                    "succeeded", "already_rendered", ref.bucket, ref.key, outputs=outputs, timings_ms=timings
                )
            source, (renditions, summary) = await self._fetch_and_render(ref, timings, started)
            if source is None:
                # Loop guard, second line: something we wrote ended up under the input prefix.
                return Outcome("ignored", OWN_OUTPUT.slug, ref.bucket, ref.key, timings_ms=timings)
            mark = time.perf_counter()
            await self._write(ref, source, renditions, planned, manifest_key, summary)
            timings["put"] = _ms_since(mark)
        except ThumbxError as exc:
            timings["total"] = _ms_since(started)
            status: Status = "permanent" if exc.permanent else "transient"
            return Outcome(status, exc.reason, ref.bucket, ref.key, detail=str(exc), timings_ms=timings)
        except Exception as exc:  # a bug or an unmapped library error: retry rather than lose the message
            timings["total"] = _ms_since(started)
            log.exception("pipeline_unexpected_error", key=ref.key)
            err = TransientError(f"unexpected {type(exc).__name__}: {exc}", reason=UNEXPECTED.slug)
            return Outcome("transient", err.reason, ref.bucket, ref.key, detail=str(err), timings_ms=timings)
        timings["total"] = _ms_since(started)
        return Outcome(
            "succeeded",
            "rendered",
            ref.bucket,
            ref.key,
            outputs=outputs,
            timings_ms=timings,
            source_bytes=len(source.data),
        )

    async def _identify(self, ref: ObjectRef) -> ObjectRef:
        """An event without an ETag (backfill, some EventBridge paths): one HEAD of the source gives it,
        with the size (checked before any download) and version (of the event's version, when it names one).
        403/404 -> ObjectMissing (permanent)."""
        if ref.etag:
            return ref
        version: dict[str, Any] = {"version_id": ref.version_id} if ref.version_id else {}
        head = await self._store.head(ref.bucket, ref.key, missing_is_error=True, **version)
        if head is None:  # a store that says "missing" without raising
            raise ObjectMissing(f"HeadObject s3://{ref.bucket}/{ref.key}: missing")
        return replace(
            ref,
            etag=head.etag or None,
            size=head.size if head.size is not None else ref.size,
            version_id=ref.version_id or head.version_id,
        )

    async def _fetch_and_render(
        self, ref: ObjectRef, timings: dict[str, float], started: float
    ) -> tuple[StoredObject | None, Rendered]:
        """Download within a reservation of the memory budget, then render within it (see worker.core.budget).

        The source's size (event, HEAD, then GetObject's ContentLength) is checked against ``max_bytes``
        before its body is read, and no more than ``max_bytes + 1`` bytes are ever read. When the render
        cannot grow the reservation at once, the bytes are dropped, and the whole amount is awaited holding
        nothing, then downloaded again (at most once).
        """
        limits = self._config.limits
        self._check_size(ref.size)
        expected = min(ref.size if ref.size is not None else limits.max_bytes, limits.max_bytes)
        spare = 0
        for attempt in (1, 2):
            # While the body is read it is held twice (the read buffer and the bytes made from it).
            async with self._budget.reserve(READ_COPIES * expected, spare=spare) as reservation:
                announced: list[int] = []

                def admit(
                    length: int, reservation: Reservation = reservation, announced: list[int] = announced
                ) -> None:
                    announced.append(length)
                    reservation.grow(READ_COPIES * length - (reservation.amount - reservation.spare))

                # exactly the event's version when it names one (GetObject(VersionId)), else the current one
                version: dict[str, Any] = {"version_id": ref.version_id} if ref.version_id else {}
                try:
                    source = await self._store.get(
                        ref.bucket, ref.key, max_bytes=limits.max_bytes, admit=admit, **version
                    )
                except MemoryBusy:  # larger than the event said, and no room for it right now
                    if attempt == 2 or not announced:
                        raise
                    expected = announced[-1]
                    continue
                reservation.shrink_to(len(source.data) + reservation.spare)
                timings["get"] = _ms_since(started)
                if OWN_OUTPUT_MARK in source.metadata:
                    return None, ([], None)
                self._check_size(len(source.data))  # a store that does not bound its reads
                mark = time.perf_counter()
                try:
                    rendered = await asyncio.get_running_loop().run_in_executor(
                        self._executor,
                        with_reservation(reservation).run,
                        self._render_and_summarise,
                        source.data,
                        limits,
                    )
                except MemoryBusy as busy:
                    if attempt == 2:
                        raise
                    expected, spare = len(source.data), busy.needed
                    log.info("render_waits_for_memory", key=ref.key, needed=busy.needed)
                    del source
                    continue
                timings["render"] = _ms_since(mark)
                return source, rendered
        raise AssertionError("unreachable")  # pragma: no cover

    def _render_and_summarise(self, data: bytes, limits: Limits) -> Rendered:
        """In the render thread: every preset, then (manifest on) the facts and placeholder of the source."""
        renditions = self._render(data, self._config.presets, limits)
        return renditions, summarise(data, renditions, limits) if self._config.manifest else None

    def _check_size(self, size: int | None) -> None:
        if size is not None and size > self._config.limits.max_bytes:
            raise ImageTooLarge(f"{size} bytes is over the {self._config.limits.max_bytes}-byte limit")

    async def _marker(self, ref: ObjectRef, marker_key: str) -> Mapping[str, str] | None:
        """One HEAD of the output written last (the manifest, else the last preset): its metadata, or None.

        Outputs are written marker-last, so a present marker means every output of that render exists.
        """
        if not ref.etag:
            return None
        try:
            head = await self._store.head(ref.bucket, marker_key)
        except ThumbxError as exc:  # e.g. 403 for a missing key: an optimisation only, so render
            log.debug("idempotency_head_failed", key=marker_key, error=str(exc))
            return None
        return None if head is None else head.metadata

    def _already_rendered(self, ref: ObjectRef, meta: Mapping[str, str], *, manifest: bool) -> bool:
        """Is the marker up to date (:mod:`worker.core.freshness`, the backfill's rule) for this source's ETag
        (from the event or :meth:`_identify`), version, sequencer and presets?"""
        if ref.etag is None:
            return False
        wanted = freshness.Wanted(ref.etag, self._fingerprint, ref.version_id, ref.sequencer)
        return freshness.verdict(meta, wanted, manifest=manifest) == "done"

    def _metadata(
        self,
        key: str,
        etag: str,
        version_id: str | None,
        sequencer: str | None,
        planned: Sequence[PlannedOutput],
    ) -> dict[str, str]:
        """The user metadata of every output (the preset mark included: the longest name is counted, and
        with manifests on, the manifest's mark and schema too)."""
        marks = [p.preset.name for p in planned] + ([manifest.MARK] if self._config.manifest else [])
        metadata = {
            freshness.SOURCE_ETAG: etag.strip('"'),
            "thumbx-source-key-sha256": source_key_digest(key),
            freshness.PRESETS: self._fingerprint,
            OWN_OUTPUT_MARK: max(marks, key=len),
        }
        if version_id:
            metadata[freshness.SOURCE_VERSION] = version_id
        if sequencer:
            metadata[SOURCE_SEQUENCER] = sequencer
        if self._config.manifest:
            metadata[manifest.SCHEMA_METADATA] = str(manifest.SCHEMA_VERSION)
        return metadata

    async def _write(
        self,
        ref: ObjectRef,
        source: StoredObject,
        renditions: Sequence[Rendition],
        planned: Sequence[PlannedOutput],
        manifest_key: str | None = None,
        summary: SourceSummary | None = None,
    ) -> None:
        version_id = source.version_id or ref.version_id
        metadata = self._metadata(ref.key, source.etag, version_id, ref.sequencer, planned)
        check_metadata(metadata)
        keys = {p.preset.name: p.key for p in planned}
        output_metadata = {k: v for k, v in metadata.items() if k != manifest.SCHEMA_METADATA}

        def put(rendition: Rendition) -> Awaitable[None]:
            return self._store.put(
                ref.bucket,
                keys[rendition.preset.name],
                rendition.data,
                content_type=rendition.content_type,
                metadata={**output_metadata, OWN_OUTPUT_MARK: rendition.preset.name},
            )

        # The completion marker the idempotency HEAD looks at is written last: the manifest when it is
        # on (after every rendition), else the last preset's output.
        rest, last = (list(renditions), None) if manifest_key else (renditions[:-1], renditions[-1])
        writes = [asyncio.ensure_future(put(r)) for r in rest]
        try:
            await asyncio.gather(*writes)
        except BaseException:
            # one write failed: stop and await the others, so none outlives the message (or its loop)
            for write in writes:
                write.cancel()
            await asyncio.gather(*writes, return_exceptions=True)
            raise
        if last is not None:
            await put(last)
        if manifest_key is not None and summary is not None:
            body = manifest.encode(
                manifest.document(
                    manifest.Source(
                        key=ref.key,
                        etag=source.etag,
                        version_id=version_id,
                        sequencer=ref.sequencer,
                        format=summary.format,
                        width=summary.width,
                        height=summary.height,
                    ),
                    [
                        manifest.RenditionEntry(
                            r.preset.name, keys[r.preset.name], r.content_type, r.width, r.height, len(r.data)
                        )
                        for r in renditions
                    ],
                    thumbhash=summary.thumbhash,
                    dominant_colour=summary.dominant_colour,
                    presets_fingerprint=self._fingerprint,
                )
            )
            await self._store.put(
                ref.bucket,
                manifest_key,
                body,
                content_type=manifest.CONTENT_TYPE,
                metadata={**metadata, OWN_OUTPUT_MARK: manifest.MARK},
            )


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
