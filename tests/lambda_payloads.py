"""Lambda test helpers: real payload shapes from ../shared/events adapted to a deployment, and a context."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from lambda_shim import handler as shim
from worker.ops.provision import Deployment, admin_client


def load_event(shared: Path, name: str) -> dict[str, Any]:
    return json.loads((shared / "events" / name).read_text())  # type: ignore[no-any-return]


def s3_notification(
    shared: Path, bucket: str, key: str, event_name: str = "ObjectCreated:Put"
) -> dict[str, Any]:
    """The S3 notification inside s3SqsEvent.json, pointed at ``bucket``/``key`` (encoded as S3 does)."""
    template = load_event(shared, "s3SqsEvent.json")["Records"][0]["body"]
    doc = json.loads(template)
    record = doc["Records"][0]
    record["eventName"] = event_name
    record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    obj = record["s3"]["object"]
    obj["key"] = quote_plus(key)
    for field in ("versionId", "eTag", "size", "sequencer"):  # the template's describe another object
        obj.pop(field, None)
    return doc  # type: ignore[no-any-return]


def direct_s3_event(shared: Path, bucket: str, key: str) -> dict[str, Any]:
    """s3Event.json (an S3 notification invoking the function directly), pointed at ``bucket``/``key``."""
    event = load_event(shared, "s3Event.json")
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


def eventbridge_event(shared: Path, bucket: str, key: str) -> dict[str, Any]:
    """S3's EventBridge "Object Created" event from ../shared/events, pointed at ``bucket``/``key``."""
    event = load_event(shared, "s3EventBridgeNotificationObjectCreatedEvent.json")
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = key
    return event


def sqs_event(shared: Path, deployment: Deployment, bodies: list[str]) -> dict[str, Any]:
    """An SQS event as Lambda's event source mapping delivers it (envelope from s3SqsEvent.json)."""
    template = load_event(shared, "s3SqsEvent.json")["Records"][0]
    records = []
    for body in bodies:
        record = copy.deepcopy(template)
        record.update(
            messageId=str(uuid.uuid4()),
            body=body,
            eventSourceARN=deployment.queue_arn,
            awsRegion=deployment.region,
        )
        records.append(record)
    return {"Records": records}


def sqs_event_for_keys(shared: Path, deployment: Deployment, keys: list[str]) -> dict[str, Any]:
    return sqs_event(
        shared, deployment, [json.dumps(s3_notification(shared, deployment.bucket, k)) for k in keys]
    )


def message_ids(event: dict[str, Any]) -> list[str]:
    return [r["messageId"] for r in event["Records"]]


@dataclass
class FakeContext:
    """What the handler reads from Lambda's context object."""

    remaining: Callable[[], int] = lambda: 300_000
    aws_request_id: str = "req-test"
    function_name: str = "thumbx"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining()


def shim_environment(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, **overrides: str
) -> Iterator[None]:
    """Set the function's environment (account A's identity, B's resources) and reset the warm state."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    env = deployment.worker_env() | {"THUMBX_CONCURRENCY": "4", "THUMBX_LOG_FORMAT": "json"} | overrides
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    shim.reset()
    try:
        yield
    finally:
        shim.reset()


OUTPUTS_PER_UPLOAD = 4  # the three default presets and the manifest (THUMBX_MANIFEST=on)


def outputs(deployment: Deployment, prefix: str) -> dict[str, tuple[bytes, str, dict[str, str]]]:
    """Every object under ``prefix`` in B: key -> (bytes, content type, metadata)."""
    s3 = admin_client(deployment, "s3")
    found = {}
    for item in s3.list_objects_v2(Bucket=deployment.bucket, Prefix=prefix).get("Contents", []):
        got = s3.get_object(Bucket=deployment.bucket, Key=item["Key"])
        found[item["Key"]] = (got["Body"].read(), got["ContentType"], got["Metadata"])
    return found


def dead_letters(deployment: Deployment) -> list[dict[str, Any]]:
    sqs = admin_client(deployment, "sqs")
    response = sqs.receive_message(
        QueueUrl=deployment.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
    )
    return list(response.get("Messages", []))
