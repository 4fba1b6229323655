"""Event normalisation against the payloads AWS really sends (../shared/events) and the odd ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.core.events import Ignored, ObjectRef, Rejected, parse_body, parse_document


def _s3_body(key: str, event: str = "ObjectCreated:Put", bucket: str = "b") -> str:
    record = {
        "eventSource": "aws:s3",
        "eventName": event,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
    }
    return json.dumps({"Records": [record]})


def test_real_s3_event_is_decoded(shared: Path) -> None:
    doc = json.loads((shared / "events" / "s3Event.json").read_text())
    items = parse_document(doc)
    assert len(items) == len(doc["Records"])
    assert all(isinstance(i, ObjectRef) for i in items)
    first = doc["Records"][0]["s3"]
    assert isinstance(items[0], ObjectRef)
    assert items[0].bucket == first["bucket"]["name"]


def test_real_sqs_wrapped_s3_event(shared: Path) -> None:
    sqs = json.loads((shared / "events" / "s3SqsEvent.json").read_text())
    (item,) = parse_body(sqs["Records"][0]["body"])
    assert item == ObjectRef(
        bucket="xxx",
        key="test.pdf",
        size=104681,
        etag="2e3ad1e983318bbd8e73b080e2997980",
        version_id="yd3d4HaWOT2zguDLvIQLU6ptDTwKBnQV",
        event_name="ObjectCreated:Put",
        event_time="2023-04-12T20:43:38.021Z",
        sequencer="00643717F9F8B85354",  # the per-key order (worker.core.sequencer)
    )


def test_real_eventbridge_event(shared: Path) -> None:
    doc = json.loads((shared / "events" / "s3EventBridgeNotificationObjectCreatedEvent.json").read_text())
    (item,) = parse_document(doc)
    assert isinstance(item, ObjectRef)
    assert (item.bucket, item.key, item.size) == ("example-bucket", "IMG_m7fzo3.jpg", 184662)
    assert item.sequencer == "006408CAD69598B05E"


def test_real_delete_event_is_ignored(shared: Path) -> None:
    doc = json.loads((shared / "events" / "s3EventDeleteObject.json").read_text())
    assert all(isinstance(i, Ignored) and i.reason == "not_object_created" for i in parse_document(doc))


@pytest.mark.parametrize("name", ["sqsEvent.json", "snsSqsEvent.json"])
def test_real_non_s3_bodies_are_ignored(shared: Path, name: str) -> None:
    sqs = json.loads((shared / "events" / name).read_text())
    for record in sqs["Records"]:
        items = parse_body(record["body"])
        assert items, name
        assert all(isinstance(i, Ignored | Rejected) for i in items)
        assert not any(isinstance(i, ObjectRef) for i in items)


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("input/holiday+photo.jpg", "input/holiday photo.jpg"),
        ("input/c%2B%2B+notes.png", "input/c++ notes.png"),
        ("input%2Fnested%2Fa+b.jpg", "input/nested/a b.jpg"),  # moto encodes '/' too
        ("input/caf%C3%A9.jpg", "input/café.jpg"),
    ],
)
def test_keys_are_decoded_with_unquote_plus(encoded: str, decoded: str) -> None:
    (item,) = parse_body(_s3_body(encoded))
    assert isinstance(item, ObjectRef)
    assert item.key == decoded


def test_test_event_is_ignored_not_rejected() -> None:
    body = json.dumps(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2014-10-13T15:57:02.089Z", "Bucket": "b"}
    )
    assert parse_body(body) == [Ignored("test_event", "b")]


def test_sns_wrapped_s3_notification() -> None:
    body = json.dumps({"Type": "Notification", "Message": _s3_body("input/a+b.jpg")})
    (item,) = parse_body(body)
    assert isinstance(item, ObjectRef)
    assert item.key == "input/a b.jpg"


def test_bad_json_is_rejected_with_reason() -> None:
    (item,) = parse_body("{not json")
    assert isinstance(item, Rejected)
    assert item.reason == "bad_json"


def test_a_malformed_record_fails_alone() -> None:
    good = json.loads(_s3_body("input/ok.jpg"))["Records"][0]
    bad = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {}}}
    items = parse_document({"Records": [good, bad]})
    assert isinstance(items[0], ObjectRef)
    assert isinstance(items[1], Rejected)
    assert items[1].reason == "bad_event"


def test_removed_event_is_ignored() -> None:
    (item,) = parse_body(_s3_body("input/a.jpg", event="ObjectRemoved:Delete"))
    assert item == Ignored("not_object_created", "ObjectRemoved:Delete")
