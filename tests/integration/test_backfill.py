"""`thumbx backfill` against the moto server, with IAM enforced and the shipped operator policy.

Images that were in the bucket before the worker existed (no notifications were sent for them), some
already thumbnailed: exactly the missing and stale ones are enqueued, the real worker renders them, and a
second run enqueues nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import aioboto3
import pytest

from tests.support import jpeg_bytes, running_worker, wait_until, worker_base_session, worker_settings
from worker.cli.backfill import run_backfill
from worker.core.config import Settings
from worker.core.errors import AccessDenied
from worker.core.events import ObjectRef, parse_body
from worker.core.freshness import presets_fingerprint
from worker.ops.backfill import BackfillPlan, Counts
from worker.ops.backfill_policy import backfill_operator_policy
from worker.ops.policies import StorageScope
from worker.ops.provision import Deployment, admin_client

NEVER_RENDERED = ["input/a.jpg", "input/b c+d.jpg", "input/nested/deep/e.jpg"]
PARTIAL = "input/partial.jpg"  # one of three thumbnails exists (e.g. a crash between puts)
STALE = "input/replaced.jpg"  # thumbnails rendered from an older version of the image
DONE = "input/done.jpg"
DUE = {*NEVER_RENDERED, PARTIAL, STALE}


def operator_session(deployment: Deployment) -> aioboto3.Session:
    """An IAM user in B holding exactly the documented backfill-operator policy."""
    iam = admin_client(deployment, "iam")
    iam.create_user(UserName="backfill-operator")
    scope = StorageScope(bucket=deployment.bucket)
    iam.put_user_policy(
        UserName="backfill-operator",
        PolicyName="thumbx-backfill",
        PolicyDocument=json.dumps(backfill_operator_policy(scope, deployment.queue_arn)),
    )
    key = iam.create_access_key(UserName="backfill-operator")["AccessKey"]
    return aioboto3.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name=deployment.region,
    )


def seed_bucket(deployment: Deployment, settings: Settings) -> None:
    s3 = admin_client(deployment, "s3")
    # the images predate the deployment: no event was ever sent for them
    s3.put_bucket_notification_configuration(Bucket=deployment.bucket, NotificationConfiguration={})
    admin_client(deployment, "sqs").purge_queue(QueueUrl=deployment.queue_url)  # provisioning's s3:TestEvent
    for i, key in enumerate([*NEVER_RENDERED, PARTIAL, STALE, DONE]):
        s3.put_object(Bucket=deployment.bucket, Key=key, Body=jpeg_bytes(320 + i, 240, color="blue"))
    s3.put_object(Bucket=deployment.bucket, Key="input/folder/", Body=b"")  # a console "folder"
    s3.put_object(Bucket=deployment.bucket, Key="elsewhere/x.jpg", Body=jpeg_bytes())  # outside the prefix

    fingerprint = presets_fingerprint(settings.presets)

    def thumbnails(key: str, source_etag: str, only: int | None = None) -> None:
        for planned in settings.layout.outputs(key, settings.presets)[:only]:
            s3.put_object(
                Bucket=deployment.bucket,
                Key=planned.key,
                Body=b"thumb",
                Metadata={
                    "thumbx-source-etag": source_etag,
                    "thumbx-presets": fingerprint,
                    "thumbx-preset": planned.preset.name,
                },
            )
        if only is None and settings.manifest:  # the manifest is written last, after every rendition
            s3.put_object(
                Bucket=deployment.bucket,
                Key=settings.layout.manifest_key(key),
                Body=b"{}",
                Metadata={
                    "thumbx-source-etag": source_etag,
                    "thumbx-presets": fingerprint,
                    "thumbx-manifest-schema": "1",
                },
            )

    etag = {k: s3.head_object(Bucket=deployment.bucket, Key=k)["ETag"].strip('"') for k in (DONE, PARTIAL)}
    thumbnails(DONE, etag[DONE])
    thumbnails(PARTIAL, etag[PARTIAL], only=1)
    thumbnails(STALE, "0123456789abcdef0123456789abcdef")


def queued_keys(deployment: Deployment) -> list[str]:
    """Every message's object key, left visible on the queue."""
    sqs = admin_client(deployment, "sqs")
    keys: list[str] = []
    for _ in range(5):
        got = sqs.receive_message(
            QueueUrl=deployment.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=1, WaitTimeSeconds=0
        ).get("Messages", [])
        for message in got:
            keys.extend(i.key for i in parse_body(message["Body"]) if isinstance(i, ObjectRef))
        if not got:
            break
    return keys


def plan_for(settings: Settings, **overrides: Any) -> BackfillPlan:
    values: dict[str, Any] = {
        "bucket": settings.bucket,
        "queue_url": settings.queue_url,
        "layout": settings.layout,
        "presets": settings.presets,
        "manifest": settings.manifest,
        "region": settings.region,
        "rate": 200.0,
    }
    return BackfillPlan(**(values | overrides))


async def test_backfill_enqueues_exactly_the_missing_then_nothing(deployment: Deployment) -> None:
    settings = worker_settings(deployment)
    seed_bucket(deployment, settings)
    operator = operator_session(deployment)

    dry = await run_backfill(settings, plan_for(settings, dry_run=True), operator)
    assert set(dry.would_enqueue) == DUE
    assert queued_keys(deployment) == [], "a dry run sends nothing"

    first = await run_backfill(settings, plan_for(settings), operator)
    assert (first.scanned, first.enqueued, first.done, first.stale, first.skipped_other) == (7, 5, 1, 1, 1)
    assert first.failed == 0
    assert sorted(queued_keys(deployment)) == sorted(DUE), "exactly one event per object that is due"

    async with running_worker(deployment, settings=settings) as worker:
        await wait_until(lambda: {o.key for o in worker.outcomes} >= DUE, timeout=60)
    assert {o.key: o.status for o in worker.outcomes} == dict.fromkeys(DUE, "succeeded")

    s3 = admin_client(deployment, "s3")
    stale_etag = s3.head_object(Bucket=deployment.bucket, Key=STALE)["ETag"].strip('"')
    for planned in settings.layout.outputs(STALE, settings.presets):
        head = s3.head_object(Bucket=deployment.bucket, Key=planned.key)
        assert head["Metadata"]["thumbx-source-etag"] == stale_etag, "stale thumbnails were re-rendered"

    second: Counts = await run_backfill(settings, plan_for(settings), operator)
    assert (second.scanned, second.enqueued, second.done) == (7, 0, 6)
    assert queued_keys(deployment) == []


async def test_backfill_since_and_prefix_narrow_the_scan(deployment: Deployment) -> None:
    settings = worker_settings(deployment)
    seed_bucket(deployment, settings)
    operator = operator_session(deployment)
    nested = await run_backfill(settings, plan_for(settings, prefix="input/nested/", dry_run=True), operator)
    assert nested.would_enqueue == ["input/nested/deep/e.jpg"]
    future = datetime.now(UTC) + timedelta(days=1)
    later = await run_backfill(settings, plan_for(settings, since=future, dry_run=True), operator)
    assert (later.scanned, later.enqueued, later.skipped_other) == (7, 0, 7)


async def test_worker_identity_cannot_list_and_is_told_what_is_needed(deployment: Deployment) -> None:
    settings = worker_settings(deployment)
    with pytest.raises(AccessDenied, match="s3:ListBucket"):
        await run_backfill(settings, plan_for(settings), worker_base_session(deployment))


def test_cli_dry_run_prints_keys_and_logs_plain_lines_off_a_terminal(deployment: Deployment) -> None:
    settings = worker_settings(deployment)
    seed_bucket(deployment, settings)
    iam = admin_client(deployment, "iam")
    operator_session(deployment)  # creates the operator user with the documented policy
    key = iam.create_access_key(UserName="backfill-operator")["AccessKey"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "THUMBX_"))}
    env |= {k: v for k, v in deployment.worker_env().items() if k.startswith("THUMBX_")}
    env.pop("THUMBX_ROLE_ARN")
    env.pop("THUMBX_EXTERNAL_ID", None)  # without a role it would be refused: it could have no effect
    env |= {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli.main", "backfill", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split("\n")) - {""} == DUE
    finished = [json.loads(line) for line in done.stderr.splitlines() if "backfill_finished" in line]
    assert finished[0]["enqueued"] == 5
    assert finished[0]["skipped_done"] == 1
    assert queued_keys(deployment) == []
