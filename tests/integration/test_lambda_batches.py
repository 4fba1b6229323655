"""The Lambda shim's batches: partial failures, parity with the service, warm reuse, the time guard."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambda_shim import handler as shim
from tests.lambda_payloads import (
    OUTPUTS_PER_UPLOAD,
    FakeContext,
    dead_letters,
    message_ids,
    outputs,
    shim_environment,
    sqs_event_for_keys,
)
from tests.support import jpeg_bytes, running_worker, wait_until
from worker.aws.s3 import S3Store, StoredObject
from worker.core.errors import ServiceUnavailable
from worker.ops.provision import Deployment, admin_client


@pytest.fixture
def function_env(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from shim_environment(deployment, monkeypatch, THUMBX_LAMBDA_SAFETY_MS="10000")


def upload(deployment: Deployment, key: str, data: bytes) -> None:
    admin_client(deployment, "s3").put_object(Bucket=deployment.bucket, Key=key, Body=data)


def test_partial_failure_reports_only_the_transient_record(
    deployment: Deployment, shared: Path, function_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_get = S3Store.get

    async def get_503_for_late(self: S3Store, bucket: str, key: str, **options: Any) -> StoredObject:
        if key == "input/late.jpg":  # S3 answering 503 for this one object (a transient failure)
            raise ServiceUnavailable(f"GetObject s3://{bucket}/{key}: service error 503 (SlowDown)")
        return await real_get(self, bucket, key, **options)

    monkeypatch.setattr(S3Store, "get", get_503_for_late)
    upload(deployment, "input/late.jpg", jpeg_bytes(64, 48))
    upload(deployment, "input/good.jpg", jpeg_bytes(1200, 900))
    upload(
        deployment,
        "input/corrupt.jpg",
        (shared / "corpus/bad/jpeg-corrupt/ianare__corrupted.jpg").read_bytes(),
    )
    event = sqs_event_for_keys(shared, deployment, ["input/good.jpg", "input/late.jpg", "input/corrupt.jpg"])
    _, late_id, corrupt_id = message_ids(event)

    assert shim.handler(event, FakeContext()) == {"batchItemFailures": [{"itemIdentifier": late_id}]}

    assert len(outputs(deployment, "thumbnails/good.jpg/")) == OUTPUTS_PER_UPLOAD
    assert outputs(deployment, "thumbnails/corrupt.jpg/") == {}
    [dead] = dead_letters(deployment)
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["thumbx-reason"] == "corrupt_image"
    assert attributes["thumbx-key"] == "input/corrupt.jpg"
    assert attributes["thumbx-source-message-id"] == corrupt_id
    assert "input%2Fcorrupt.jpg" in dead["Body"] or "input/corrupt.jpg" in dead["Body"]


def test_service_and_shim_write_byte_identical_thumbnails(
    deployment: Deployment, shared: Path, function_env: None
) -> None:
    photo = (shared / "corpus/edge/jpeg/immich__portrait-orientation-6.jpg").read_bytes()
    upload(deployment, "input/parity.jpg", photo)

    async def through_the_service() -> None:
        async with running_worker(deployment) as worker:
            await wait_until(lambda: worker.outcome_for("input/parity.jpg") is not None)
        outcome = worker.outcome_for("input/parity.jpg")
        assert outcome is not None
        assert outcome.status == "succeeded", outcome

    asyncio.run(through_the_service())
    by_service = outputs(deployment, "thumbnails/parity.jpg/")
    assert len(by_service) == OUTPUTS_PER_UPLOAD
    s3 = admin_client(deployment, "s3")
    for key in by_service:
        s3.delete_object(Bucket=deployment.bucket, Key=key)
    assert outputs(deployment, "thumbnails/parity.jpg/") == {}

    event = sqs_event_for_keys(shared, deployment, ["input/parity.jpg"])
    assert shim.handler(event, FakeContext()) == {"batchItemFailures": []}
    by_shim = outputs(deployment, "thumbnails/parity.jpg/")
    assert by_shim == by_service  # same keys, bytes, content types and metadata


def test_warm_invocations_reuse_the_session_clients_and_loop(
    deployment: Deployment, shared: Path, function_env: None
) -> None:
    for i in range(3):
        upload(deployment, f"input/warm-{i}.jpg", jpeg_bytes(640, 480))
    shim.handler(sqs_event_for_keys(shared, deployment, ["input/warm-0.jpg"]), FakeContext())
    cold = shim.environment()
    runtime, loop = cold.runtime, cold.loop
    assert runtime is not None
    assert runtime.role is not None
    for i in (1, 2):
        event = sqs_event_for_keys(shared, deployment, [f"input/warm-{i}.jpg"])
        assert shim.handler(event, FakeContext()) == {"batchItemFailures": []}
    warm = shim.environment()
    assert (warm.runtime, warm.loop) == (runtime, loop)
    assert runtime.role.stats.refreshes == 1, "one sts:AssumeRole for the whole environment"
    assert all(len(outputs(deployment, f"thumbnails/warm-{i}.jpg/")) == OUTPUTS_PER_UPLOAD for i in range(3))


def test_time_guard_reports_the_records_it_did_not_start(
    deployment: Deployment, shared: Path, monkeypatch: pytest.MonkeyPatch, function_env: None
) -> None:
    monkeypatch.setenv("THUMBX_CONCURRENCY", "1")
    keys = [f"input/guard-{i}.jpg" for i in range(3)]
    for key in keys:
        upload(deployment, key, jpeg_bytes(640, 480))
    event = sqs_event_for_keys(shared, deployment, keys)
    clock = itertools.chain([60_000], itertools.repeat(4_000))  # plenty for one record, then too little
    response = shim.handler(event, FakeContext(remaining=lambda: next(clock)))
    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in message_ids(event)[1:]]}
    assert len(outputs(deployment, "thumbnails/guard-0.jpg/")) == OUTPUTS_PER_UPLOAD
    assert outputs(deployment, "thumbnails/guard-1.jpg/") == {}
    assert outputs(deployment, "thumbnails/guard-2.jpg/") == {}
    # with too little time from the start nothing is begun and everything is reported
    low = shim.handler(event, FakeContext(remaining=lambda: 2_000))
    assert len(low["batchItemFailures"]) == 3
