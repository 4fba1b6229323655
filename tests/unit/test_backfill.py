"""Backfill decisions, the events it sends, its pacing and backlog cap, and the operator policy."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from worker.aws.s3 import ObjectHead
from worker.cli.backfill import queue_arn_from_url
from worker.core.errors import ConfigError
from worker.core.events import ObjectRef, parse_document
from worker.core.freshness import Wanted, presets_fingerprint, verdict, worst
from worker.core.keys import KeyLayout
from worker.core.presets import parse_presets
from worker.ops.backfill import Backfill, BackfillPlan, SourceObject, parse_since, s3_event, screen
from worker.ops.backfill_policy import backfill_operator_policy
from worker.ops.policies import StorageScope

NOW = datetime(2026, 11, 28, tzinfo=UTC)
PRESETS = parse_presets("sm:128:webp,lg:1024:jpeg")
FINGERPRINT = presets_fingerprint(PRESETS)


def obj(key: str, etag: str = "e1", when: datetime = NOW) -> SourceObject:
    return SourceObject(key=key, etag=etag, size=10, last_modified=when)


def test_verdict_missing_stale_done() -> None:
    def recorded(etags: list[str | None]) -> str:
        """The backfill's verdict over outputs recording these source ETags (None: absent)."""
        return worst(
            verdict(None if e is None else {"thumbx-source-etag": e, "thumbx-presets": FINGERPRINT}, wanted)
            for e in etags
        )

    wanted = Wanted("e1", FINGERPRINT)
    assert recorded(["e1", None]) == "missing"
    assert recorded(["e1", "e0"]) == "stale"
    assert recorded(["e1", ""]) == "stale", "an output that does not say what it came from is redone"
    assert recorded(["e1", "e1"]) == "done"


def test_screen_refuses_what_the_worker_would_ignore_and_old_objects() -> None:
    layout = KeyLayout()
    assert screen(obj("input/dir/"), layout, None) == "not_work"
    assert (
        screen(obj("input/a.jpg", when=NOW - timedelta(days=2)), layout, NOW - timedelta(days=1)) == "too_old"
    )
    assert screen(obj("input/a.jpg"), layout, NOW - timedelta(days=1)) is None


def test_event_round_trips_through_the_worker_parser() -> None:
    body = s3_event("bkt", obj("input/holiday photo+1 ü.jpg", etag="abc"), region="eu-west-1", now=NOW)
    record = body["Records"][0]
    assert record["s3"]["object"]["key"] == "input/holiday+photo%2B1+%C3%BC.jpg"
    assert record["eventTime"] == "2026-11-28T00:00:00.000Z"
    [item] = parse_document(body)
    assert item == ObjectRef(
        bucket="bkt",
        key="input/holiday photo+1 ü.jpg",
        size=10,
        etag="abc",
        event_name="ObjectCreated:Backfill",
        event_time="2026-11-28T00:00:00.000Z",
    )


def test_prefix_outside_input_is_a_config_error() -> None:
    plan = BackfillPlan("b", "q", KeyLayout(), PRESETS, prefix="thumbnails/")
    with pytest.raises(ConfigError, match="outside the input prefix"):
        plan.scan_prefix()
    assert BackfillPlan("b", "q", KeyLayout(), PRESETS, prefix="input/2024/").scan_prefix() == "input/2024/"


def test_parse_since() -> None:
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T10:00:00+01:00").utcoffset() == timedelta(hours=1)
    with pytest.raises(ConfigError, match="--since"):
        parse_since("last week")


def test_operator_policy_lists_and_enqueues_but_never_reads_images() -> None:
    doc = backfill_operator_policy(StorageScope(bucket="imgs"), "arn:aws:sqs:us-east-1:222222222222:jobs")
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    listing = by_sid["ListSourcesAndThumbnails"]
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["input/*", "thumbnails/*"]
    assert by_sid["ReadThumbnailMetadata"]["Resource"] == "arn:aws:s3:::imgs/thumbnails/*"
    assert not any("input/" in str(s["Resource"]) for s in doc["Statement"])
    assert not any("Delete" in str(s["Action"]) or s["Action"] == "*" for s in doc["Statement"])


def test_queue_arn_from_url() -> None:
    url = "https://sqs.eu-west-1.amazonaws.com/222222222222/thumbx-jobs"
    assert queue_arn_from_url(url) == "arn:aws:sqs:eu-west-1:222222222222:thumbx-jobs"
    assert queue_arn_from_url("http://127.0.0.1:5000/222222222222/q") == "arn:aws:sqs:*:222222222222:q"


# --- the engine with in-memory S3/SQS -------------------------------------------------------------------


class FakeS3:
    def __init__(self, keys: list[str], outputs: dict[str, str], fingerprint: str = FINGERPRINT) -> None:
        self.contents = [{"Key": k, "ETag": '"e1"', "Size": 10, "LastModified": NOW} for k in keys]
        self.outputs = outputs  # output key -> recorded source etag
        self.fingerprint = fingerprint  # the presets every output records it was rendered with

    def get_paginator(self, _name: str) -> Any:
        contents = self.contents

        class Paginator:
            async def _pages(self, **_: Any) -> AsyncIterator[dict[str, Any]]:
                for i in range(0, len(contents), 1000):
                    yield {"Contents": contents[i : i + 1000]}

            def paginate(self, **kw: Any) -> AsyncIterator[dict[str, Any]]:
                return self._pages(**kw)

        return Paginator()

    async def list_objects_v2(self, *, Prefix: str, **_: Any) -> dict[str, Any]:
        return {"Contents": [{"Key": k} for k in self.outputs if k.startswith(Prefix)]}

    async def head(self, _bucket: str, key: str) -> ObjectHead | None:
        etag = self.outputs.get(key)
        metadata = {"thumbx-source-etag": etag, "thumbx-presets": self.fingerprint} if etag else {}
        return None if etag is None else ObjectHead(etag="x", metadata=metadata)


class FakeSqs:
    def __init__(self, backlog: list[int] | None = None) -> None:
        self.sent: list[tuple[float, int]] = []
        self.backlog = backlog or []

    async def send_message_batch(self, *, Entries: list[dict[str, str]], **_: Any) -> dict[str, Any]:
        self.sent.append((time.monotonic(), len(Entries)))
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    async def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        value = self.backlog.pop(0) if self.backlog else 0
        return {"Attributes": {"ApproximateNumberOfMessages": str(value)}}


def plan(**kw: Any) -> BackfillPlan:
    return BackfillPlan("b", "q", KeyLayout(), PRESETS, **kw)


async def test_rate_limit_paces_the_sends() -> None:
    s3 = FakeS3([f"input/{i:03}.jpg" for i in range(60)], {})
    sqs = FakeSqs()
    started = time.monotonic()
    counts = await Backfill(s3, s3, sqs, plan(rate=40.0, max_backlog=0)).run()
    assert counts.enqueued == 60
    assert sum(n for _, n in sqs.sent) == 60
    assert max(n for _, n in sqs.sent) == 10
    # a leaky bucket of 40/s lets the first 40 through at once, the next 20 take about half a second
    assert time.monotonic() - started >= 0.4


async def test_backlog_cap_pauses_until_the_queue_drains() -> None:
    s3 = FakeS3(["input/a.jpg"], {})
    sqs = FakeSqs(backlog=[5000, 5000, 10])
    counts = await Backfill(s3, s3, sqs, plan(max_backlog=1000, backlog_poll_seconds=0.01)).run()
    assert counts.enqueued == 1
    assert sqs.backlog == [], "polled until the backlog fell under the cap"


async def test_done_objects_cost_no_send_and_partial_ones_are_sent() -> None:
    outputs = {"thumbnails/done.jpg/sm.webp": "e1", "thumbnails/done.jpg/lg.jpg": "e1"}
    outputs["thumbnails/half.jpg/sm.webp"] = "e1"
    s3 = FakeS3(["input/done.jpg", "input/half.jpg"], outputs)
    sqs = FakeSqs()
    counts = await Backfill(s3, s3, sqs, plan(max_backlog=0)).run()
    assert (counts.done, counts.enqueued) == (1, 1)


async def test_a_preset_resized_under_the_same_name_makes_its_outputs_due() -> None:
    outputs = {"thumbnails/a.jpg/sm.webp": "e1", "thumbnails/a.jpg/lg.jpg": "e1"}
    before = parse_presets("sm:96:webp,lg:1024:jpeg")  # sm was 96 px when these were rendered
    s3 = FakeS3(["input/a.jpg"], outputs, fingerprint=presets_fingerprint(before))
    sqs = FakeSqs()
    counts = await Backfill(s3, s3, sqs, plan(max_backlog=0)).run()
    assert (counts.done, counts.stale, counts.enqueued) == (0, 1, 1)
    assert sum(n for _, n in sqs.sent) == 1, "one event re-renders it with the 128 px preset"
    current = FakeS3(["input/a.jpg"], outputs)
    unchanged = await Backfill(current, current, FakeSqs(), plan(max_backlog=0)).run()
    assert (unchanged.done, unchanged.enqueued) == (1, 0)
