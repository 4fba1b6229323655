"""The Lambda shim against every real payload shape, on the moto server with IAM enforced.

Account A's identity may only assume ThumbXRole, so every thumbnail found in B was written through the
assumed role.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambda_shim import handler as shim
from tests.lambda_payloads import (
    FakeContext,
    dead_letters,
    direct_s3_event,
    eventbridge_event,
    load_event,
    outputs,
    s3_notification,
    shim_environment,
    sqs_event,
    sqs_event_for_keys,
)
from tests.support import jpeg_bytes
from worker.core.errors import TransientError
from worker.ops.provision import Deployment, admin_client

PRESET_KEYS = {
    "sm.webp": "image/webp",
    "md.jpg": "image/jpeg",
    "lg.jpg": "image/jpeg",
    "manifest.json": "application/json",  # THUMBX_MANIFEST=on, the default
}


@pytest.fixture
def function_env(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from shim_environment(deployment, monkeypatch)


def upload(deployment: Deployment, key: str) -> None:
    admin_client(deployment, "s3").put_object(Bucket=deployment.bucket, Key=key, Body=jpeg_bytes(800, 600))


def assert_rendered(deployment: Deployment, key: str) -> None:
    rel = key.removeprefix("input/")
    found = outputs(deployment, f"thumbnails/{rel}/")
    assert {k: v[1] for k, v in found.items()} == {f"thumbnails/{rel}/{n}": t for n, t in PRESET_KEYS.items()}


def test_sqs_event_with_s3_notification_renders_through_the_assumed_role(
    deployment: Deployment, shared: Path, function_env: None
) -> None:
    upload(deployment, "input/holiday photo+1.jpg")  # encoded as holiday+photo%2B1.jpg in the event
    event = sqs_event_for_keys(shared, deployment, ["input/holiday photo+1.jpg"])
    assert shim.handler(event, FakeContext()) == {"batchItemFailures": []}
    assert_rendered(deployment, "input/holiday photo+1.jpg")
    runtime = shim.environment().runtime
    assert runtime is not None
    assert runtime.role is not None
    assert runtime.role.stats.refreshes == 1


def test_sns_wrapped_and_eventbridge_bodies_in_sqs(
    deployment: Deployment, shared: Path, function_env: None
) -> None:
    upload(deployment, "input/sns.jpg")
    upload(deployment, "input/bridge.jpg")
    sns = json.loads(load_event(shared, "snsSqsEvent.json")["Records"][0]["body"])
    sns["Message"] = json.dumps(s3_notification(shared, deployment.bucket, "input/sns.jpg"))
    bridge = eventbridge_event(shared, deployment.bucket, "input/bridge.jpg")
    event = sqs_event(shared, deployment, [json.dumps(sns), json.dumps(bridge)])
    assert shim.handler(event, FakeContext()) == {"batchItemFailures": []}
    assert_rendered(deployment, "input/sns.jpg")
    assert_rendered(deployment, "input/bridge.jpg")


def test_non_s3_bodies_are_acknowledged_and_garbage_is_dead_lettered(
    deployment: Deployment, shared: Path, function_env: None
) -> None:
    # sqsEvent.json: "Test message." (not JSON: poison) and {"message": "foo1"} (JSON, not S3: ignored);
    # snsSqsEvent.json: an SNS notification whose message is not an S3 event (ignored).
    plain = load_event(shared, "sqsEvent.json")
    assert shim.handler(plain, FakeContext()) == {"batchItemFailures": []}
    assert shim.handler(load_event(shared, "snsSqsEvent.json"), FakeContext()) == {"batchItemFailures": []}
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": deployment.bucket}
    assert shim.handler(sqs_event(shared, deployment, [json.dumps(test_event)]), FakeContext()) == {
        "batchItemFailures": []
    }
    [dead] = dead_letters(deployment)
    assert dead["Body"] == "Test message."
    assert dead["MessageAttributes"]["thumbx-reason"]["StringValue"] == "bad_json"
    assert (
        dead["MessageAttributes"]["thumbx-source-message-id"]["StringValue"]
        == plain["Records"][0]["messageId"]
    )


def test_foreign_bucket_and_delete_events_are_ignored(
    deployment: Deployment, shared: Path, function_env: None
) -> None:
    foreign = load_event(shared, "s3SqsEvent.json")  # bucket "xxx", key test.pdf: not ours
    deleted = s3_notification(shared, deployment.bucket, "input/gone.jpg", event_name="ObjectRemoved:Delete")
    assert shim.handler(foreign, FakeContext()) == {"batchItemFailures": []}
    assert shim.handler(sqs_event(shared, deployment, [json.dumps(deleted)]), FakeContext()) == {
        "batchItemFailures": []
    }
    direct_delete = load_event(shared, "s3EventDeleteObject.json")
    direct_delete["Records"][0]["s3"]["bucket"]["name"] = deployment.bucket
    assert shim.handler(direct_delete, FakeContext()) == {"counts": {"done": 1}}
    assert outputs(deployment, "thumbnails/") == {}
    assert dead_letters(deployment) == []


def test_direct_s3_and_eventbridge_events(deployment: Deployment, shared: Path, function_env: None) -> None:
    upload(deployment, "input/direct.jpg")
    upload(deployment, "input/rule.jpg")
    direct = direct_s3_event(shared, deployment.bucket, "input/direct.jpg")
    bridge = eventbridge_event(shared, deployment.bucket, "input/rule.jpg")
    assert shim.handler(direct, FakeContext()) == {"counts": {"done": 1}}
    assert shim.handler(bridge, FakeContext()) == {"counts": {"done": 1}}
    assert_rendered(deployment, "input/direct.jpg")
    assert_rendered(deployment, "input/rule.jpg")


def test_direct_event_raises_so_lambda_retries_a_transient_failure(
    deployment: Deployment, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # outputs outside what ThumbXRole may write: PutObject is AccessDenied, a deployment error (transient)
    env = shim_environment(deployment, monkeypatch, THUMBX_OUTPUT_PREFIX="elsewhere/")
    next(env)
    try:
        upload(deployment, "input/cannot-write.jpg")
        direct = direct_s3_event(shared, deployment.bucket, "input/cannot-write.jpg")
        with pytest.raises(TransientError, match="access_denied"):
            shim.handler(direct, FakeContext())
        assert dead_letters(deployment) == []
    finally:
        next(env, None)


def test_a_missing_source_is_dead_lettered_as_object_missing(
    deployment: Deployment, shared: Path, function_env: None
) -> None:
    direct = direct_s3_event(shared, deployment.bucket, "input/never-there.jpg")
    assert shim.handler(direct, FakeContext()) == {"counts": {"dead_lettered": 1}}
    [dead] = dead_letters(deployment)
    assert dead["MessageAttributes"]["thumbx-reason"]["StringValue"] == "object_missing"
