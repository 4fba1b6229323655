"""The doctor's verdicts on configuration it has read (pure): the line a user gets for each mistake."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from worker.core.config import RoleSettings
from worker.ops.doctor import (
    Status,
    evaluate_bucket_policy,
    evaluate_dead_letter,
    evaluate_notification,
    evaluate_ownership,
    evaluate_public_access_block,
    evaluate_session_names,
    evaluate_visibility,
    exit_code,
    failed,
    passed,
    render_table,
    unknown,
)
from worker.ops.doctor_probe import is_emulator
from worker.ops.perimeter import BucketPrincipals, bucket_policy

QUEUE = "arn:aws:sqs:us-east-1:222222222222:thumbx-events"


def _notification(
    prefix: str | None, *, queue: str = QUEUE, events: tuple[str, ...] = ("s3:ObjectCreated:*",)
) -> Any:
    entry: dict[str, Any] = {"Id": "n1", "QueueArn": queue, "Events": list(events)}
    if prefix is not None:
        entry["Filter"] = {"Key": {"FilterRules": [{"Name": "Prefix", "Value": prefix}]}}
    return {"QueueConfigurations": [entry]}


def test_notification_under_the_input_prefix_passes() -> None:
    check = evaluate_notification(_notification("input/"), QUEUE, "input/", "thumbnails/")
    assert check.status is Status.PASSED


@pytest.mark.parametrize(
    ("prefix", "words"),
    [
        (None, "no prefix filter"),
        ("", "no prefix filter"),
        ("thumbnails/", "prefix 'thumbnails/'"),
        ("thumb", "prefix 'thumb'"),
    ],
)
def test_notification_covering_outputs_fails_naming_the_loop(prefix: str | None, words: str) -> None:
    check = evaluate_notification(_notification(prefix), QUEUE, "input/", "thumbnails/")
    assert check.status is Status.FAILED
    assert words in check.detail
    assert "re-trigger" in check.detail


def test_notification_to_another_queue_or_none_fails() -> None:
    other = evaluate_notification(
        _notification("input/", queue=QUEUE + "-old"), QUEUE, "input/", "thumbnails/"
    )
    assert other.status is Status.FAILED
    assert "targets the worker's queue" in other.detail
    removed_only = evaluate_notification(
        _notification(None, events=("s3:ObjectRemoved:*",)), QUEUE, "input/", "thumbnails/"
    )
    assert removed_only.status is Status.FAILED
    assert "uploads never reach the queue" in removed_only.detail


def test_eventbridge_delivery_is_flagged() -> None:
    configuration = {**_notification("input/"), "EventBridgeConfiguration": {}}
    assert evaluate_notification(configuration, QUEUE, "input/", "thumbnails/").status is Status.FAILED


def test_tls_deny_recognised_in_the_shipped_policy_and_its_absence_judged_by_environment() -> None:
    principals = BucketPrincipals("arn:aws-cn:iam::2:role/ThumbXRole", ["arn:aws-cn:iam::2:role/Admin"])
    shipped = json.dumps(bucket_policy("photos", principals, partition="aws-cn"))
    assert evaluate_bucket_policy(shipped, "photos").status is Status.PASSED
    assert evaluate_bucket_policy(None, "photos").status is Status.FAILED
    assert evaluate_bucket_policy(None, "photos", emulator=True).status is Status.NOT_CHECKABLE
    allow_only = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::2:role/r"},
                "Action": "s3:*",
                "Resource": "arn:aws:s3:::photos/*",
            }
        ]
    }
    assert evaluate_bucket_policy(json.dumps(allow_only), "photos").status is Status.FAILED
    other_bucket = bucket_policy("elsewhere", principals)
    assert evaluate_bucket_policy(json.dumps(other_bucket), "photos").status is Status.FAILED


def test_public_access_block_names_the_settings_that_are_off() -> None:
    all_on = dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    assert evaluate_public_access_block(all_on).status is Status.PASSED
    check = evaluate_public_access_block({**all_on, "RestrictPublicBuckets": False})
    assert check.status is Status.FAILED
    assert check.detail == "not enabled: RestrictPublicBuckets"
    assert evaluate_public_access_block(None).status is Status.FAILED


def test_ownership_must_be_bucket_owner_enforced() -> None:
    assert evaluate_ownership([{"ObjectOwnership": "BucketOwnerEnforced"}]).status is Status.PASSED
    assert evaluate_ownership([{"ObjectOwnership": "ObjectWriter"}]).status is Status.FAILED
    assert evaluate_ownership(None).status is Status.FAILED


def test_dead_letter_and_visibility() -> None:
    redrive = json.dumps({"deadLetterTargetArn": QUEUE + "-dlq", "maxReceiveCount": 5})
    assert (
        evaluate_dead_letter({"RedrivePolicy": redrive}).detail
        == "after 5 receives messages move to thumbx-events-dlq"
    )
    assert evaluate_dead_letter({}).status is Status.FAILED
    assert evaluate_dead_letter({"RedrivePolicy": "{}"}).status is Status.FAILED
    assert evaluate_visibility({"VisibilityTimeout": "360"}, 60, lambda_timeout=60).status is Status.PASSED
    assert evaluate_visibility({"VisibilityTimeout": "300"}, 60, lambda_timeout=60).status is Status.FAILED
    assert evaluate_visibility({"VisibilityTimeout": "30"}, 60).status is Status.FAILED
    assert evaluate_visibility({}, 60).status is Status.NOT_CHECKABLE


def test_table_and_exit_code() -> None:
    checks = [passed("a", "fine"), unknown("bb", "cannot tell"), failed("c", "broken")]
    table = render_table(checks).splitlines()
    assert table[0].split() == ["STATUS", "CHECK", "WHY"]
    assert table[3].split() == ["FAIL", "c", "broken"]
    assert table[-1] == "1 passed, 1 failed, 1 not checkable"
    assert exit_code(checks) == 1
    assert exit_code(checks[:2]) == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:4566", True),
        ("http://localhost:5000", True),
        ("https://s3.eu-west-1.amazonaws.com", False),
        (None, False),
    ],
)
def test_loopback_endpoints_are_emulators(url: str | None, expected: bool) -> None:
    assert is_emulator(url) is expected


def test_session_names_outside_the_trust_pattern_fail_before_aws_refuses() -> None:
    role = RoleSettings("arn:aws:iam::222222222222:role/ThumbXRole")
    assert evaluate_session_names(role).status is Status.PASSED
    check = evaluate_session_names(replace(role, session_name="batch-job", source_identity="batch-job"))
    assert check.status is Status.FAILED
    assert "THUMBX_SESSION_NAME 'batch-job'" in check.detail
    assert "THUMBX_SOURCE_IDENTITY 'batch-job'" in check.detail
    missing = evaluate_session_names(replace(role, source_identity=None))
    assert missing.status is Status.FAILED
    assert "requires one" in missing.detail
