"""ThumbXRole's least privilege, enforced by the emulator: what the worker's role may and may not do."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support import jpeg_bytes
from worker.ops.provision import Deployment, admin_client, client_for


def _assumed(deployment: Deployment, service: str) -> Any:
    sts = client_for(deployment, "sts", deployment.worker_keys)
    creds = sts.assume_role(
        RoleArn=deployment.role_arn,
        RoleSessionName="thumbx-permission-test",
        ExternalId=deployment.external_id or "",
        SourceIdentity="thumbx-permission-test",
        DurationSeconds=900,
    )["Credentials"]
    return boto3.client(
        service,
        endpoint_url=deployment.endpoint,
        region_name=deployment.region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _denied(call: Any) -> None:
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.response["Error"]["Code"] in {"AccessDenied", "403"}, info.value.response


def test_worker_identity_may_only_assume_the_role(deployment: Deployment) -> None:
    s3_as_a = client_for(deployment, "s3", deployment.worker_keys)
    _denied(lambda: s3_as_a.list_buckets())
    sts = _assumed(deployment, "sts")
    assert sts.get_caller_identity()["Arn"].startswith(
        f"arn:aws:sts::{deployment.account_b}:assumed-role/ThumbXRole/"
    )


def test_role_reads_input_and_writes_thumbnails_only(deployment: Deployment) -> None:
    admin = admin_client(deployment, "s3")
    for key in ("input/a.jpg", "private/secret.jpg"):
        admin.put_object(Bucket=deployment.bucket, Key=key, Body=jpeg_bytes(32, 32))
    s3 = _assumed(deployment, "s3")
    bucket = deployment.bucket

    assert s3.get_object(Bucket=bucket, Key="input/a.jpg")["Body"].read()[:2] == b"\xff\xd8"
    s3.put_object(Bucket=bucket, Key="thumbnails/a.jpg/sm.webp", Body=b"x", ContentType="image/webp")

    _denied(lambda: s3.delete_object(Bucket=bucket, Key="input/a.jpg"))
    _denied(lambda: s3.delete_object(Bucket=bucket, Key="thumbnails/a.jpg/sm.webp"))
    _denied(lambda: s3.list_objects_v2(Bucket=bucket))
    _denied(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="input/"))
    _denied(lambda: s3.get_object(Bucket=bucket, Key="private/secret.jpg"))
    _denied(lambda: s3.put_object(Bucket=bucket, Key="input/overwrite.jpg", Body=b"x"))
    _denied(lambda: s3.put_object(Bucket=bucket, Key="elsewhere/x.jpg", Body=b"x"))
    _denied(lambda: s3.put_bucket_policy(Bucket=bucket, Policy="{}"))
    # the objects are still there: nothing the role tried could remove them
    assert admin.head_object(Bucket=bucket, Key="input/a.jpg")["ContentLength"] > 0


def test_role_consumes_the_queue_but_cannot_send_to_it(deployment: Deployment) -> None:
    sqs = _assumed(deployment, "sqs")
    sqs.receive_message(QueueUrl=deployment.queue_url, WaitTimeSeconds=0)
    _denied(lambda: sqs.send_message(QueueUrl=deployment.queue_url, MessageBody="forged"))
    _denied(lambda: sqs.purge_queue(QueueUrl=deployment.queue_url))
    sqs.send_message(QueueUrl=deployment.dlq_url, MessageBody="dead-lettered on purpose")
