"""Backfill: thumbnails for the images that were in the bucket before the worker was deployed.

The backfill lists ``input/…`` with the *caller's own* credentials (ThumbXRole may not list), decides for
each object whether its thumbnails are up to date, and sends one S3-shaped ``ObjectCreated`` event per
object that is not done to the queue, so the normal workers do the rendering. Nothing is rendered here.

"Up to date" is the pipeline's own rule (:mod:`worker.core.freshness`), asked of every planned output
(``thumbnails/<path>/<preset>.<ext>``): it exists and its metadata records the source's current ETag and
the fingerprint of the current presets (the pipeline writes both on every output). With manifests on
(``THUMBX_MANIFEST``), ``thumbnails/<path>/manifest.json`` is one more planned output, and a manifest of an
older schema (its ``thumbx-manifest-schema`` metadata) counts as stale. So a re-run skips what is done
(resumable), a replaced source is enqueued again (stale), and a newly added preset, a preset changed under
the same name or a new manifest schema makes every object due again.

Sending is paced by a leaky bucket (``rate`` messages per second) and, when ``max_backlog`` is set, paused
while the queue already holds that many visible messages, so a backfill never floods the workers.

The permissions the caller needs are rendered by :func:`worker.ops.policies.backfill_operator_policy`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote_plus

import structlog

from worker.aws.errors import mapped
from worker.aws.s3 import ObjectHead
from worker.core import freshness
from worker.core.errors import AccessDenied, ConfigError
from worker.core.extras import require
from worker.core.keys import KeyLayout
from worker.core.presets import Preset

if TYPE_CHECKING:
    from aiolimiter import AsyncLimiter

log = structlog.get_logger(__name__)

EVENT_NAME = "ObjectCreated:Backfill"  # any ObjectCreated:* is work for the worker; this one says why
Verdict = freshness.Verdict | Literal["not_work", "too_old"]


# --- pure ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceObject:
    key: str
    etag: str
    size: int
    last_modified: datetime


def screen(obj: SourceObject, layout: KeyLayout, since: datetime | None) -> Verdict | None:
    """Verdicts that need no request: not work for the worker at all, or older than ``--since``."""
    if layout.refusal(obj.key) is not None:
        return "not_work"
    if since is not None and obj.last_modified < since:
        return "too_old"
    return None


def s3_event(bucket: str, obj: SourceObject, *, region: str, now: datetime | None = None) -> dict[str, Any]:
    """The S3 notification a fresh upload of ``obj`` would have produced (key encoded like S3 does)."""
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": moment,
                "eventName": EVENT_NAME,
                "userIdentity": {"principalId": "thumbx-backfill"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "thumbx-backfill",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(obj.key, safe="/"), "size": obj.size, "eTag": obj.etag},
                },
            }
        ]
    }


@dataclass
class Counts:
    """What the progress bar and the final log line show."""

    scanned: int = 0
    enqueued: int = 0
    done: int = 0  # skipped: thumbnails up to date
    stale: int = 0  # enqueued because a thumbnail was rendered from other bytes (subset of enqueued)
    skipped_other: int = 0  # not work (folder markers, output prefix) or older than --since
    failed: int = 0
    last_key: str = ""
    would_enqueue: list[str] = field(default_factory=list)  # dry run only

    def as_dict(self) -> dict[str, int | str]:
        return {
            "scanned": self.scanned,
            "enqueued": self.enqueued,
            "skipped_done": self.done,
            "stale": self.stale,
            "skipped_other": self.skipped_other,
            "failed": self.failed,
            "last_key": self.last_key,
        }


@dataclass(frozen=True)
class BackfillPlan:
    bucket: str
    queue_url: str
    layout: KeyLayout
    presets: tuple[Preset, ...]
    manifest: bool = False  # THUMBX_MANIFEST: the manifest is one more output that must be up to date
    region: str = "us-east-1"
    prefix: str | None = None  # defaults to the layout's input prefix
    since: datetime | None = None
    start_after: str | None = None
    dry_run: bool = False
    rate: float = 50.0  # messages per second
    max_backlog: int = 1000  # pause while the queue holds this many visible messages; 0 = never pause
    check_concurrency: int = 16  # objects whose outputs are checked at once
    backlog_poll_seconds: float = 2.0

    def scan_prefix(self) -> str:
        prefix = self.prefix if self.prefix is not None else self.layout.input_prefix
        if not prefix.startswith(self.layout.input_prefix):
            raise ConfigError(
                f"--prefix {prefix!r} is outside the input prefix {self.layout.input_prefix!r}:"
                " the worker would ignore those objects"
            )
        return prefix


# --- I/O ----------------------------------------------------------------------------------------------------


class Heads(Protocol):
    async def head(self, bucket: str, key: str) -> ObjectHead | None: ...


ProgressCallback = Callable[[Counts], None]


class Backfill:
    """Scan -> check -> enqueue, with an S3 client (listing), an object store (HEAD) and an SQS client."""

    def __init__(
        self,
        s3: Any,
        store: Heads,
        sqs: Any,
        plan: BackfillPlan,
        *,
        on_progress: ProgressCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._s3 = s3
        self._store = store
        self._sqs = sqs
        self._plan = plan
        self._progress = on_progress or (lambda _c: None)
        self._clock = clock
        limiter = require("aiolimiter", "thumbx backfill")  # the ops extra
        self._limiter: AsyncLimiter = limiter.AsyncLimiter(max(plan.rate, 1.0), 1.0)
        self._batch = max(1, min(10, int(plan.rate)))
        self._checks = asyncio.Semaphore(plan.check_concurrency)
        self._backlog_checked_at = float("-inf")
        self._fingerprint = freshness.presets_fingerprint(plan.presets)
        self.counts = Counts()

    async def run(self) -> Counts:
        prefix = self._plan.scan_prefix()
        log.info(
            "backfill_started",
            bucket=self._plan.bucket,
            prefix=prefix,
            since=self._plan.since.isoformat() if self._plan.since else None,
            dry_run=self._plan.dry_run,
            rate=self._plan.rate,
        )
        async for page in self._pages(prefix):
            due = await self._check_page(page)
            await self._enqueue(due)
        log.info("backfill_finished", dry_run=self._plan.dry_run, **self.counts.as_dict())
        return self.counts

    async def _pages(self, prefix: str) -> AsyncIterator[list[SourceObject]]:
        params: dict[str, Any] = {"Bucket": self._plan.bucket, "Prefix": prefix}
        if self._plan.start_after:
            params["StartAfter"] = self._plan.start_after
        paginator = self._s3.get_paginator("list_objects_v2")
        what = f"ListObjectsV2 s3://{self._plan.bucket}/{prefix}"
        try:
            with mapped(what):
                async for page in paginator.paginate(**params):
                    yield [
                        SourceObject(
                            key=o["Key"],
                            etag=str(o.get("ETag", "")).strip('"'),
                            size=int(o.get("Size", 0)),
                            last_modified=o["LastModified"],
                        )
                        for o in page.get("Contents", [])
                    ]
        except AccessDenied as exc:
            raise AccessDenied(
                f"{exc} - the backfill lists with your own credentials and needs s3:ListBucket on"
                f" arn:aws:s3:::{self._plan.bucket} (see `thumbx backfill --print-policy`)",
                reason="access_denied",
            ) from exc

    async def _check_page(self, page: list[SourceObject]) -> list[SourceObject]:
        verdicts = await asyncio.gather(*(self._check(obj) for obj in page))
        due: list[SourceObject] = []
        for obj, v in zip(page, verdicts, strict=True):
            self.counts.scanned += 1
            self.counts.last_key = obj.key
            if v in ("missing", "stale"):
                due.append(obj)
                self.counts.stale += v == "stale"
            elif v == "done":
                self.counts.done += 1
            else:
                self.counts.skipped_other += 1
        self._progress(self.counts)
        return due

    async def _check(self, obj: SourceObject) -> Verdict:
        early = screen(obj, self._plan.layout, self._plan.since)
        if early is not None:
            return early
        planned = [p.key for p in self._plan.layout.outputs(obj.key, self._plan.presets)]
        manifest_key = self._plan.layout.manifest_key(obj.key) if self._plan.manifest else None
        if manifest_key is not None:
            planned.append(manifest_key)
        wanted = freshness.Wanted(obj.etag, self._fingerprint)
        verdicts: list[freshness.Verdict] = []
        async with self._checks:
            # One listing of the object's thumbnail folder says what exists (a never-rendered object costs
            # one request); only existing outputs are HEADed for their metadata, stopping at a stale one.
            # Listing rather than HEADing a missing key keeps "missing" a 404 question, not a 403 one.
            existing = await self._list_folder(planned[0].rsplit("/", 1)[0] + "/")
            for key in planned:
                head = await self._store.head(self._plan.bucket, key) if key in existing else None
                metadata = None if head is None else head.metadata
                verdicts.append(freshness.verdict(metadata, wanted, manifest=key == manifest_key))
                if verdicts[-1] != "done":
                    break
        return freshness.worst(verdicts)

    async def _list_folder(self, folder: str) -> set[str]:
        with mapped(f"ListObjectsV2 s3://{self._plan.bucket}/{folder}"):
            response = await self._s3.list_objects_v2(
                Bucket=self._plan.bucket, Prefix=folder, Delimiter="/", MaxKeys=1000
            )
        return {o["Key"] for o in response.get("Contents", [])}

    async def _enqueue(self, due: list[SourceObject]) -> None:
        if self._plan.dry_run:
            self.counts.would_enqueue.extend(o.key for o in due)
            self.counts.enqueued += len(due)
            self._progress(self.counts)
            return
        for start in range(0, len(due), self._batch):
            chunk = due[start : start + self._batch]
            await self._wait_for_backlog()
            await self._limiter.acquire(len(chunk))
            self._send_result(chunk, await self._send(chunk))
            self._progress(self.counts)

    async def _send(self, chunk: Sequence[SourceObject]) -> Mapping[str, Any]:
        entries = [
            {
                "Id": str(i),
                "MessageBody": json.dumps(s3_event(self._plan.bucket, obj, region=self._plan.region)),
            }
            for i, obj in enumerate(chunk)
        ]
        with mapped(f"SendMessageBatch {self._plan.queue_url}"):
            response: Mapping[str, Any] = await self._sqs.send_message_batch(
                QueueUrl=self._plan.queue_url, Entries=entries
            )
        return response

    def _send_result(self, chunk: Sequence[SourceObject], response: Mapping[str, Any]) -> None:
        failed = {int(f["Id"]): str(f.get("Code", "failed")) for f in response.get("Failed", [])}
        for i, obj in enumerate(chunk):
            if i in failed:
                self.counts.failed += 1
                log.warning("backfill_send_failed", key=obj.key, code=failed[i])
            else:
                self.counts.enqueued += 1

    async def _wait_for_backlog(self) -> None:
        """Pause while the queue already holds ``max_backlog`` visible messages (checked at most 1/s)."""
        if self._plan.max_backlog <= 0 or self._clock() - self._backlog_checked_at < 1.0:
            return
        waited = False
        while True:
            self._backlog_checked_at = self._clock()
            backlog = await self._visible_messages()
            if backlog < self._plan.max_backlog:
                if waited:
                    log.info("backfill_resumed", backlog=backlog)
                return
            if not waited:
                log.info("backfill_waiting_for_backlog", backlog=backlog, max_backlog=self._plan.max_backlog)
                waited = True
            await asyncio.sleep(self._plan.backlog_poll_seconds)

    async def _visible_messages(self) -> int:
        with mapped(f"GetQueueAttributes {self._plan.queue_url}"):
            response = await self._sqs.get_queue_attributes(
                QueueUrl=self._plan.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )
        return int(response.get("Attributes", {}).get("ApproximateNumberOfMessages", "0"))


def parse_since(text: str) -> datetime:
    """``2026-11-01`` or an ISO timestamp; naive values are taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--since: {text!r} is not an ISO date or timestamp") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
