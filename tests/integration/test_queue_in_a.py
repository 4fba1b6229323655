"""Queue placement is configuration: a queue in account A is read with A's own credentials, while S3 in B
is still reached only through ThumbXRole. (moto delivers notifications only to a queue in the bucket's own
account, so the S3 event is sent here the way S3 would send it.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import jpeg_bytes, running_worker, wait_until, worker_settings
from worker.demo.emulator import MotoEmulator, moto_client_factory
from worker.ops.provision import Deployment, Names, admin_client


@pytest.fixture
def names() -> Names:
    return Names(queue_in="a")


async def test_worker_reads_queue_in_a_and_writes_through_the_role(
    deployment: Deployment, moto_server: MotoEmulator, shared: Path
) -> None:
    assert deployment.queue_url.split("/")[-2] == deployment.account_a
    settings = worker_settings(deployment)
    assert settings.queue_credentials == "compute"
    admin_client(deployment, "s3").put_object(
        Bucket=deployment.bucket, Key="input/from a queue.jpg", Body=jpeg_bytes(800, 600)
    )
    # A real S3 notification body (../shared/events) pointed at our bucket and key, as S3 would send it.
    template = json.loads(
        json.loads((shared / "events" / "s3SqsEvent.json").read_text())["Records"][0]["body"]
    )
    record = template["Records"][0]
    record["s3"]["bucket"] = {"name": deployment.bucket, "arn": f"arn:aws:s3:::{deployment.bucket}"}
    record["s3"]["object"] = {"key": "input/from+a+queue.jpg", "size": 1}
    moto_server.disable_iam()
    try:
        sqs_a = moto_client_factory(deployment.endpoint, deployment.region)("sqs", deployment.account_a)
        sqs_a.send_message(QueueUrl=deployment.queue_url, MessageBody=json.dumps(template))
    finally:
        moto_server.enable_iam()
    async with running_worker(deployment, settings=settings) as worker:
        await wait_until(lambda: worker.outcome_for("input/from a queue.jpg") is not None)
    outcome = worker.outcome_for("input/from a queue.jpg")
    assert outcome is not None
    assert outcome.status == "succeeded", outcome
    head = admin_client(deployment, "s3").head_object(
        Bucket=deployment.bucket, Key="thumbnails/from a queue.jpg/md.jpg"
    )
    assert head["ContentType"] == "image/jpeg"
    assert worker.metrics.count("thumbx_messages_deleted_total") >= 1
