"""The Lambda shim with the queue in account A (the natural place for a Lambda event source): thumbnails
are still written in B through ThumbXRole, while a poison record is dead-lettered in A with A's own
credentials (THUMBX_QUEUE_CREDENTIALS=compute)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lambda_shim import handler as shim
from tests.lambda_payloads import (
    OUTPUTS_PER_UPLOAD,
    FakeContext,
    message_ids,
    outputs,
    shim_environment,
    sqs_event_for_keys,
)
from tests.support import jpeg_bytes
from worker.demo.emulator import MotoEmulator, moto_client_factory
from worker.ops.provision import Deployment, Names, admin_client


@pytest.fixture
def names() -> Names:
    return Names(queue_in="a")


@pytest.fixture
def function_env(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from shim_environment(deployment, monkeypatch)


def test_dead_letters_go_to_the_dlq_in_a_and_thumbnails_to_b(
    deployment: Deployment, moto_server: MotoEmulator, shared: Path, function_env: None
) -> None:
    assert deployment.dlq_url.split("/")[-2] == deployment.account_a
    s3 = admin_client(deployment, "s3")
    s3.put_object(Bucket=deployment.bucket, Key="input/fine.jpg", Body=jpeg_bytes(800, 600))
    s3.put_object(
        Bucket=deployment.bucket, Key="input/broken.jpg", Body=b"\xff\xd8\xff\xe0 not really a jpeg"
    )
    event = sqs_event_for_keys(shared, deployment, ["input/fine.jpg", "input/broken.jpg"])

    assert shim.handler(event, FakeContext()) == {"batchItemFailures": []}

    assert len(outputs(deployment, "thumbnails/fine.jpg/")) == OUTPUTS_PER_UPLOAD
    moto_server.disable_iam()
    try:
        sqs_a = moto_client_factory(deployment.endpoint, deployment.region)("sqs", deployment.account_a)
        dead = sqs_a.receive_message(
            QueueUrl=deployment.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
    finally:
        moto_server.enable_iam()
    assert [m["MessageAttributes"]["thumbx-source-message-id"]["StringValue"] for m in dead] == [
        message_ids(event)[1]
    ]
    assert dead[0]["MessageAttributes"]["thumbx-key"]["StringValue"] == "input/broken.jpg"
