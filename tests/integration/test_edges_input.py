"""Input edges against the moto server over HTTP: every edge input gets a typed outcome on its first
receive, at bounded cost (issue 11: sizes, keys S3 would refuse, parsing, missing sources, no eTag)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import aioboto3
import pytest

from tests.reliability import (
    CountingRenderer,
    dead_letters,
    fresh_queue,
    image,
    output_keys,
    queue_counts,
    rendered,
    s3_event,
    upload,
)
from tests.support import RunningWorker, running_worker, wait_until, worker_settings
from tests.unit.images import encode, quadrants
from tests.unit.test_edges_props import with_text_chunk
from worker.aws.s3 import S3Store
from worker.aws.sqs import Message
from worker.core.errors import ImageTooLarge, ObjectMissing
from worker.core.keys import source_key_digest
from worker.ops.provision import Deployment, admin_client

MAX_BYTES = 300_000


def send(deployment: Deployment, *bodies: str) -> None:
    sqs = admin_client(deployment, "sqs")
    for body in bodies:
        sqs.send_message(QueueUrl=deployment.queue_url, MessageBody=body)


def receives(messages: Sequence[Message]) -> dict[str, int]:
    """How many receives each message took (its highest ApproximateReceiveCount seen)."""
    counts: dict[str, int] = {}
    for message in messages:
        counts[message.message_id] = max(counts.get(message.message_id, 0), message.receive_count)
    return counts


async def run_until_settled(
    deployment: Deployment, expected: int, renderer: CountingRenderer | None = None
) -> RunningWorker:
    settings = worker_settings(
        deployment,
        THUMBX_MAX_BYTES=str(MAX_BYTES),
        THUMBX_VISIBILITY_TIMEOUT="5",
        THUMBX_RETRY_BASE_SECONDS="1",
    )
    async with running_worker(deployment, settings=settings, renderer=renderer) as worker:
        await wait_until(lambda: len(worker.messages) >= expected, timeout=40)
        await wait_until(lambda: queue_counts(deployment) == (0, 0), timeout=15)
        await asyncio.sleep(1.5)  # room for a wrongly retried message to come back
    return worker


def noise(size: int) -> bytes:
    """A JPEG's first bytes followed by filler: only its size matters here."""
    return encode(quadrants(16, 16), "JPEG") + b"\0" * size


async def test_oversized_sources_are_refused_on_their_size_in_one_receive(deployment: Deployment) -> None:
    fresh_queue(deployment)
    upload(deployment, "input/edge/big.jpg", noise(MAX_BYTES + 1))  # the notification says its size
    etag = upload(deployment, "input/edge/lying.jpg", noise(2 * MAX_BYTES))
    send(deployment, s3_event(deployment, "input/edge/lying.jpg", etag, size=10))  # the event lies: 10 bytes
    small = "input/edge/small.jpg"
    upload(deployment, small, image(400))
    worker = await run_until_settled(deployment, expected=4)
    dead = {d.attributes["thumbx-key"]: d for d in dead_letters(deployment)}
    assert {k: d.reason for k, d in dead.items()} == {
        "input/edge/big.jpg": "image_too_large",
        "input/edge/lying.jpg": "image_too_large",  # two messages: notification and hand-made event
    }
    assert "300000-byte limit" in dead["input/edge/lying.jpg"].attributes["thumbx-detail"]
    assert rendered(deployment, small)
    assert set(receives(worker.messages).values()) == {1}, "each refused on its first receive"
    assert worker.metrics.count("thumbx_messages_retried_total") == 0


class CountingBody:
    """Counts the bytes S3Store takes from a real response body."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self.taken = 0

    async def __aenter__(self) -> Any:
        return await self._body.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._body.__aexit__(*exc)

    async def readinto(self, buffer: Any) -> int:
        read = int(await self._body.readinto(buffer))
        self.taken += read
        return read

    async def read(self, amount: int | None = None) -> bytes:
        data = bytes(await self._body.read(amount))
        self.taken += len(data)
        return data


class CountingClient:
    """A real aiobotocore S3 client whose GetObject bodies are counted."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.bodies: list[CountingBody] = []

    async def get_object(self, **params: Any) -> dict[str, Any]:
        response = dict(await self._client.get_object(**params))
        response["Body"] = body = CountingBody(response["Body"])
        self.bodies.append(body)
        return response

    async def head_object(self, **params: Any) -> dict[str, Any]:
        return dict(await self._client.head_object(**params))


async def test_s3store_reads_no_body_past_the_limit(deployment: Deployment) -> None:
    """Over HTTP: a 24 MB object with a 1 MB limit is refused on its ContentLength, not a byte of its body
    read (before: read whole, then refused by the imaging core); missing sources are ObjectMissing."""
    key = "input/edge/24mb.jpg"
    upload(deployment, key, noise(24 * 1024 * 1024))
    upload(deployment, "input/edge/ok.jpg", noise(1000))
    keys = deployment.admin_keys
    session = aioboto3.Session(
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        region_name=deployment.region,
    )
    async with session.client("s3", endpoint_url=deployment.endpoint) as s3:
        client = CountingClient(s3)
        store = S3Store(client)
        with pytest.raises(ImageTooLarge, match="1048576-byte limit"):
            await store.get(deployment.bucket, key, max_bytes=1024 * 1024)
        assert client.bodies[-1].taken == 0
        ok = await store.get(deployment.bucket, "input/edge/ok.jpg", max_bytes=1024 * 1024)
        assert ok.data == noise(1000)
        assert client.bodies[-1].taken == len(ok.data)
        with pytest.raises(ObjectMissing):
            await store.get(deployment.bucket, "input/edge/nothing-here.jpg", max_bytes=1024)
        with pytest.raises(ObjectMissing):
            await store.head(deployment.bucket, "input/edge/nothing-here.jpg", missing_is_error=True)


async def test_keys_s3_would_refuse_are_refused_at_planning_in_one_receive(deployment: Deployment) -> None:
    fresh_queue(deployment)
    too_long = "input/edge/" + "k" * 1010  # 1021 bytes, fine as an input; its outputs are over 1024
    dotted = "input/edge/a/../b.jpg"
    empty_segment = "input/edge//c.jpg"
    control = "input/edge/bell\x07.jpg"
    non_ascii = "input/edge/" + "é" * 330  # 660 bytes: its percent-encoding made the metadata over 2 KB
    for key in (too_long, dotted, empty_segment, control, non_ascii):
        upload(deployment, key, image(300))
    worker = await run_until_settled(deployment, expected=5)
    dead = {d.attributes["thumbx-key"]: d.reason for d in dead_letters(deployment)}
    assert dead == {
        too_long: "key_too_long",
        dotted: "bad_key",
        empty_segment: "bad_key",
        control.replace("\x07", "\\x07"): "bad_key",  # written as an escape: SQS refuses U+0007
    }
    assert output_keys(deployment) == sorted(
        f"thumbnails/edge/{'é' * 330}/{name}" for name in ("sm.webp", "md.jpg", "lg.jpg", "manifest.json")
    ), "nothing written for the refused keys"
    head = admin_client(deployment, "s3").head_object(
        Bucket=deployment.bucket, Key=f"thumbnails/edge/{'é' * 330}/lg.jpg"
    )
    metadata = head["Metadata"]
    assert metadata["thumbx-source-key-sha256"] == source_key_digest(non_ascii)
    assert sum(len(k) + len(v.encode()) for k, v in metadata.items()) < 2048
    assert set(receives(worker.messages).values()) == {1}
    assert worker.metrics.count("thumbx_messages_retried_total") == 0


async def test_unparseable_inputs_are_typed_in_one_receive(deployment: Deployment) -> None:
    fresh_queue(deployment)
    send(deployment, "[" * 100_000 + "]" * 100_000)  # RecursionError on every receive before
    latin1 = "input/edge/latin1-chunk.png"
    upload(deployment, latin1, with_text_chunk(b"caf\xe9", b"cr\xe8me"))  # UnicodeDecodeError before
    missing_etag = "0123456789abcdef0123456789abcdef"
    send(deployment, s3_event(deployment, "input/edge/never-uploaded.jpg", missing_etag, size=10))
    # a lone surrogate (JSON "\ud800"): not UTF-8, so neither a key nor an SQS attribute as it is
    send(deployment, s3_event(deployment, "input/edge/SURROGATE.jpg", "e").replace("SURROGATE", "\\ud800"))
    worker = await run_until_settled(deployment, expected=4)
    dead = dead_letters(deployment)
    assert sorted(d.reason for d in dead) == ["bad_event", "bad_key", "object_missing"]
    assert {d.attributes["thumbx-key"] for d in dead if d.reason == "bad_key"} == {"input/edge/\\ud800.jpg"}
    assert rendered(deployment, latin1)
    assert set(receives(worker.messages).values()) == {1}
    assert worker.metrics.count("thumbx_messages_retried_total") == 0


def drop_messages(deployment: Deployment) -> None:
    sqs = admin_client(deployment, "sqs")
    while True:
        got = sqs.receive_message(
            QueueUrl=deployment.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not got:
            return
        for message in got:
            sqs.delete_message(QueueUrl=deployment.queue_url, ReceiptHandle=message["ReceiptHandle"])


def etagless_event(deployment: Deployment, key: str) -> str:
    body = json.loads(s3_event(deployment, key, "x", size=0))
    del body["Records"][0]["s3"]["object"]["eTag"]
    del body["Records"][0]["s3"]["object"]["size"]
    return json.dumps(body)


async def test_events_without_an_etag_are_rendered_once(deployment: Deployment) -> None:
    fresh_queue(deployment)
    key = "input/edge/backfilled.jpg"
    source = image(640)
    upload(deployment, key, source)
    drop_messages(deployment)  # the notification carries an eTag: only etag-less events from here on
    renderer = CountingRenderer()
    send(deployment, etagless_event(deployment, key))
    worker = await run_until_settled(deployment, expected=1, renderer=renderer)
    assert rendered(deployment, key)
    send(deployment, etagless_event(deployment, key))  # redelivered / enqueued again
    again = await run_until_settled(deployment, expected=1, renderer=renderer)
    assert renderer.count(source) == 1, "the second delivery was acked without rendering"
    assert [o.reason for o in worker.outcomes + again.outcomes] == ["rendered", "already_rendered"]
    assert dead_letters(deployment) == []
