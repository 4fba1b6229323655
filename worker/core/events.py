"""Event normalisation (pure): an SQS message body or a Lambda record becomes S3 object references.

Accepted shapes:

* S3 notifications (``{"Records": [{"eventSource": "aws:s3", ...}]}``), delivered straight to SQS or as a
  direct Lambda event. Keys are URL-encoded with ``+`` for spaces: decoded with ``unquote_plus``.
* The same wrapped in an SNS notification (``{"Type": "Notification", "Message": "<json>"}``).
* EventBridge ``Object Created`` events from ``aws.s3`` (keys are not URL-encoded there).
* ``s3:TestEvent`` (sent when a notification configuration is saved): ignored on purpose.

Everything becomes a list of items, one per record: an :class:`ObjectRef` to process, an :class:`Ignored`
(acknowledged on purpose, with a reason) or a :class:`Rejected` (a malformed record: a permanent failure of
that record alone).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from worker.core.sequencer import normalise as normalise_sequencer


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    event_name: str = "ObjectCreated:Put"
    event_time: str | None = None
    sequencer: str | None = None  # per-key order of S3 events (worker.core.sequencer); None: not ordered


@dataclass(frozen=True)
class Ignored:
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Rejected:
    reason: str
    detail: str


Item = ObjectRef | Ignored | Rejected

# Real events nest 6 levels deep (SNS-wrapped: the inner document is parsed on its own). Anything deeper
# is refused before json.loads, whose C decoder raises RecursionError around 1,000 levels.
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_NESTING = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in _JSON_NESTING.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def load_json(text: str) -> tuple[Any, Rejected | None]:
    """``json.loads`` with a depth limit; every failure is a :class:`Rejected`, never an exception."""
    if json_depth(text) > MAX_JSON_DEPTH:
        return None, Rejected("bad_event", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, Rejected("bad_json", f"body is not JSON: {exc.msg}")
    except (ValueError, RecursionError) as exc:  # e.g. an integer over Python's 4,300-digit limit
        return None, Rejected("bad_json", f"body is not usable JSON: {str(exc)[:200]}")


def parse_body(body: str) -> list[Item]:
    """Parse an SQS message body (a JSON string)."""
    doc, rejected = load_json(body)
    if rejected is not None:
        return [rejected]
    return parse_document(doc)


def parse_document(doc: Any, *, _depth: int = 0) -> list[Item]:
    """Parse an already-decoded event document (SQS body, SNS message or direct Lambda S3 event)."""
    if not isinstance(doc, Mapping):
        return [Ignored("not_s3_event", f"JSON {type(doc).__name__}, not an object")]
    if doc.get("Event") == "s3:TestEvent":
        return [Ignored("test_event", str(doc.get("Bucket", "")))]
    if doc.get("Type") == "Notification" and "Message" in doc:
        if _depth > 2:
            return [Rejected("bad_event", "notification nested too deeply")]
        message = doc["Message"]
        if not isinstance(message, str):
            return [Rejected("bad_event", "SNS Message is not a string")]
        inner, rejected = load_json(message)
        if rejected is not None:
            if rejected.reason == "bad_json":
                return [Ignored("not_s3_event", "SNS message is not JSON")]
            return [rejected]
        return parse_document(inner, _depth=_depth + 1)
    if doc.get("source") == "aws.s3" and "detail-type" in doc:
        return [_eventbridge(doc)]
    records = doc.get("Records")
    if isinstance(records, list):
        if not records:
            return [Ignored("no_records")]
        return [_s3_record(record) for record in records]
    return [Ignored("not_s3_event", "no Records, SNS or EventBridge shape")]


def _s3_record(record: Any) -> Item:
    if not isinstance(record, Mapping):
        return Rejected("bad_event", "record is not an object")
    source = record.get("eventSource")
    if source != "aws:s3":
        return Ignored("not_s3_event", f"eventSource {source!r}")
    name = record.get("eventName")
    if not isinstance(name, str):
        return Rejected("bad_event", "record has no eventName")
    if not name.startswith("ObjectCreated:"):
        return Ignored("not_object_created", name)
    located = _located(record, "s3", "S3 record")
    if isinstance(located, Rejected):
        return located
    bucket, obj, raw_key = located
    return ObjectRef(
        bucket=bucket,
        key=unquote_plus(raw_key),
        size=_int_or_none(obj.get("size")),
        etag=_str_or_none(obj.get("eTag")),
        version_id=_str_or_none(obj.get("versionId")),
        event_name=name,
        event_time=_str_or_none(record.get("eventTime")),
        sequencer=normalise_sequencer(_str_or_none(obj.get("sequencer"))),
    )


def _eventbridge(doc: Mapping[str, Any]) -> Item:
    detail_type = doc.get("detail-type")
    if detail_type != "Object Created":
        return Ignored("not_object_created", str(detail_type))
    located = _located(doc, "detail", "EventBridge event")
    if isinstance(located, Rejected):
        return located
    bucket, obj, key = located
    detail = doc["detail"]
    return ObjectRef(
        bucket=bucket,
        key=key,
        size=_int_or_none(obj.get("size")),
        etag=_str_or_none(obj.get("etag")),
        version_id=_str_or_none(obj.get("version-id")),
        event_name="ObjectCreated:" + str(detail.get("reason", "PutObject")),
        event_time=_str_or_none(doc.get("time")),
        sequencer=normalise_sequencer(_str_or_none(obj.get("sequencer"))),
    )


def _located(container: Mapping[str, Any], field: str, what: str) -> tuple[str, Any, str] | Rejected:
    """``container[field]``'s bucket name, object and (raw) key, the same in S3 and EventBridge events."""
    try:
        part = container[field]
        bucket = part["bucket"]["name"]
        obj = part["object"]
        key = obj["key"]
    except (KeyError, TypeError) as exc:
        return Rejected("bad_event", f"{what} lacks {exc}")
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        return Rejected("bad_event", "bucket or key is empty or not a string")
    return bucket, obj, key


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
