"""What the end-to-end path relies on, checked on both emulators: events reach the queue in B for input/
only, and the worker's identity in A lands in B when it assumes ThumbXRole."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from tests.support import jpeg_bytes, worker_base_session, worker_settings
from worker.aws.credentials import assumed_role_session
from worker.ops.provision import Deployment, admin_client


def _drain_keys(sqs: Any, queue_url: str, polls: int = 3) -> list[str]:
    keys: list[str] = []
    for _ in range(polls):
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            body = json.loads(message["Body"])
            keys += [unquote_plus(r["s3"]["object"]["key"]) for r in body.get("Records", [])]
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return keys


def test_uploads_under_input_notify_the_queue_and_outputs_do_not(e2e_deployment: Deployment) -> None:
    d = e2e_deployment
    s3, sqs = admin_client(d, "s3"), admin_client(d, "sqs")
    s3.put_object(Bucket=d.bucket, Key="input/a b+c.jpg", Body=jpeg_bytes(32, 32))
    s3.put_object(Bucket=d.bucket, Key="thumbnails/a b+c.jpg/sm.webp", Body=b"not a source")
    assert _drain_keys(sqs, d.queue_url) == ["input/a b+c.jpg"]


async def test_worker_identity_in_a_assumes_thumbx_role_in_b(e2e_deployment: Deployment) -> None:
    d = e2e_deployment
    base = worker_base_session(d)
    async with base.client("sts", endpoint_url=d.endpoint) as sts:
        assert (await sts.get_caller_identity())["Account"] == d.account_a
    role = worker_settings(d).role
    assert role is not None
    assumed = await assumed_role_session(base, role, region=d.region, endpoint_url=d.endpoint)
    async with assumed.session.client("sts", endpoint_url=d.endpoint) as sts:
        identity = await sts.get_caller_identity()
    assert identity["Account"] == d.account_b
    assert identity["Arn"].startswith(f"arn:aws:sts::{d.account_b}:assumed-role/{d.role_arn.split('/')[-1]}/")
