"""At-least-once delivery handled exactly right: duplicates, shuffling, slow renders, multi-record bodies,
outputs that come back as inputs. Moto server over HTTP, IAM enforced, the real service in-process."""

from __future__ import annotations

import json
import random

import pytest

from tests.reliability import (
    CountingRenderer,
    account,
    dead_letters,
    fresh_queue,
    image,
    queue_counts,
    rendered,
    s3_event,
    upload,
)
from tests.support import running_worker, wait_until, worker_settings
from worker.ops.provision import Deployment, admin_client

pytestmark = pytest.mark.reliability


def _take_notifications(deployment: Deployment, expected: int) -> list[str]:
    """Receive and delete the notifications S3 put on the queue, to redeliver them on our own terms."""
    sqs = admin_client(deployment, "sqs")
    bodies: list[str] = []
    for _ in range(10):
        got = sqs.receive_message(QueueUrl=deployment.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in got.get("Messages", []):
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=deployment.queue_url, ReceiptHandle=m["ReceiptHandle"])
        if len(bodies) >= expected:
            break
    assert len(bodies) == expected, bodies
    return bodies


async def test_every_message_twice_in_random_order_renders_each_image_once(deployment: Deployment) -> None:
    fresh_queue(deployment)
    keys = [f"input/dup/photo {i}.jpg" for i in range(3)]
    sources = {key: image(1200 + i) for i, key in enumerate(keys)}
    for key, data in sources.items():
        upload(deployment, key, data)
    copies = _take_notifications(deployment, len(keys)) * 2
    random.Random(20261128).shuffle(copies)
    sqs = admin_client(deployment, "sqs")
    for body in copies:
        sqs.send_message(QueueUrl=deployment.queue_url, MessageBody=body)

    renderer = CountingRenderer()
    settings = worker_settings(deployment, THUMBX_CONCURRENCY="1")  # copies never overlap in time
    async with running_worker(deployment, settings=settings, renderer=renderer) as worker:
        await wait_until(lambda: len(worker.messages) == len(copies), timeout=60)

    assert [renderer.count(data) for data in sources.values()] == [1, 1, 1]
    skipped = [o for o in worker.outcomes if o.reason == "already_rendered"]
    assert sorted(o.key for o in skipped) == sorted(keys), "each second copy: one HEAD, no render"
    assert worker.metrics.count("thumbx_records_succeeded_total", reason="rendered") == len(keys)
    account(deployment, uploads=keys, ignored=[f"duplicate of {o.key}" for o in skipped], sent=len(copies))


@pytest.mark.slow
async def test_render_slower_than_visibility_timeout_is_never_delivered_twice(deployment: Deployment) -> None:
    fresh_queue(deployment)
    key = "input/slow/big.jpg"
    data = image(1300)
    upload(deployment, key, data)
    renderer = CountingRenderer(delays={1300: 7.0})
    # two workers polling the same queue: a lapse in visibility would hand the job to the other one
    settings = worker_settings(deployment, THUMBX_VISIBILITY_TIMEOUT="5", THUMBX_CONCURRENCY="2")
    async with (
        running_worker(deployment, settings=settings, renderer=renderer) as first,
        running_worker(deployment, settings=settings, renderer=renderer) as second,
    ):
        await wait_until(lambda: bool(first.outcomes or second.outcomes), timeout=40)
        await wait_until(lambda: queue_counts(deployment) == (0, 0), timeout=10)
    assert renderer.count(data) == 1
    outcomes = first.outcomes + second.outcomes
    assert [(o.key, o.reason) for o in outcomes] == [(key, "rendered")]
    extended = sum(w.metrics.count("thumbx_visibility_extended_total") for w in (first, second))
    assert extended >= 1, "7 s of render under a 5 s visibility timeout needs the heartbeat"
    assert [m.receive_count for m in first.messages + second.messages] == [1]
    account(deployment, uploads=[key], sent=len({m.message_id for m in first.messages + second.messages}))


async def test_a_bad_record_in_a_multi_record_body_fails_alone(deployment: Deployment) -> None:
    good = ["input/multi/a.jpg", "input/multi/b.jpg"]
    bad = "input/multi/not-really.jpg"
    etags = {key: upload(deployment, key, image(1400 + i)) for i, key in enumerate(good)}
    etags[bad] = upload(deployment, bad, b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
    fresh_queue(deployment)  # drop the one-record notifications: this test sends one three-record body
    records = [json.loads(s3_event(deployment, k, etags[k]))["Records"][0] for k in (good[0], bad, good[1])]
    admin_client(deployment, "sqs").send_message(
        QueueUrl=deployment.queue_url, MessageBody=json.dumps({"Records": records})
    )
    async with running_worker(deployment) as worker:
        await wait_until(lambda: len(worker.outcomes) == 3, timeout=40)
        await wait_until(lambda: queue_counts(deployment) == (0, 0), timeout=10)
    assert [o.status for o in worker.outcomes] == ["succeeded", "permanent", "succeeded"]
    assert all(rendered(deployment, key) for key in good)
    (dead,) = dead_letters(deployment)
    assert dead.attributes["thumbx-failed-record-indexes"] == "1"
    assert dead.attributes["thumbx-key"] == bad
    assert dead.reason == "unsupported_format"
    assert worker.metrics.count("thumbx_messages_retried_total") == 0
    # 2 records rendered + 1 dead-lettered = 3 sent
    account(deployment, uploads=good, expected_dead=1, sent=3)


async def test_outputs_never_become_inputs_and_refusals_are_counted(deployment: Deployment) -> None:
    fresh_queue(deployment)
    s3 = admin_client(deployment, "s3")
    # a notification filter misconfigured to include the output prefix: an event for a thumbnail
    thumb = "thumbnails/elsewhere.jpg/md.jpg"
    put = s3.put_object(Bucket=deployment.bucket, Key=thumb, Body=image(1500))
    admin_client(deployment, "sqs").send_message(
        QueueUrl=deployment.queue_url, MessageBody=s3_event(deployment, thumb, put["ETag"].strip('"'))
    )
    # one of our outputs copied back under the input prefix (it carries our metadata)
    copied = "input/copied-thumbnail.jpg"
    upload(deployment, copied, image(1501), metadata={"thumbx-preset": "md", "thumbx-source-etag": "x"})
    async with running_worker(deployment) as worker:
        await wait_until(lambda: len(worker.outcomes) == 2, timeout=40)
        await wait_until(lambda: queue_counts(deployment) == (0, 0), timeout=10)
    assert sorted((o.key, o.status, o.reason) for o in worker.outcomes) == [
        (copied, "ignored", "own_output"),
        (thumb, "ignored", "output_prefix"),
    ]
    assert worker.metrics.count("thumbx_loop_guard_total") == 2
    listing = s3.list_objects_v2(Bucket=deployment.bucket, Prefix="thumbnails/")
    assert [o["Key"] for o in listing["Contents"]] == [thumb], "nothing was rendered from an output"
    account(deployment, uploads=[], ignored=[thumb, copied], sent=2)
