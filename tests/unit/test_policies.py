"""The IAM documents themselves: what AWS would enforce (and the emulator cannot), asserted statically."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from parliament import analyze_policy_string

from worker import config, policies
from worker.config import RoleSettings, load_settings
from worker.doctor import Status, evaluate_bucket_policy
from worker.doctor_probe import SESSION_NAME as DOCTOR_SESSION
from worker.errors import ConfigError
from worker.policies import DeploySpec, render_all

A, B = "111111111111", "222222222222"
KMS = "arn:aws:kms:us-east-1:222222222222:key/00000000-0000-0000-0000-000000000000"
SPECS = [
    DeploySpec(A, B),
    DeploySpec(A, B, external_id="ext-123", queue_in="compute", kms_key_arn=KMS),
    DeploySpec(A, B, queue_in="storage", kms_key_arn=KMS, partition="aws-cn", region="cn-north-1"),
]
OBJECT_ACTION = re.compile(r"^s3:(\*|.*Object.*|AbortMultipartUpload|ListMultipartUploadParts)$")


def _documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for spec in SPECS:
        for name, document in render_all(spec).items():
            yield f"{spec.queue_in}:{name}", document


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["Statement"])


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize(
    ("name", "document"), list(_documents()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_no_allow_to_root_or_everyone(name: str, document: dict[str, Any]) -> None:
    for statement in _statements(document):
        principal = statement.get("Principal")
        if principal is None:
            continue
        if statement["Effect"] == "Deny":
            # Deny-to-everyone statements restrict; they must be conditional or scoped by a condition key
            assert principal == "*", (name, statement)
            assert "Condition" in statement, (name, statement)
            continue
        assert principal != "*", (name, statement)
        for arn in _list(principal.get("AWS", [])):
            assert not arn.endswith(":root"), (name, arn)
            assert "*" not in arn, (name, arn)
            assert not arn.isdigit(), (name, arn)
        assert "NotPrincipal" not in statement


@pytest.mark.parametrize(
    ("name", "document"), list(_documents()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_no_object_actions_allowed_on_the_bucket_arn(name: str, document: dict[str, Any]) -> None:
    for statement in _statements(document):
        if statement["Effect"] != "Allow":
            continue
        object_actions = [a for a in _list(statement["Action"]) if OBJECT_ACTION.match(a)]
        if not object_actions:
            continue
        for resource in _list(statement["Resource"]):
            bucket_part = resource.split(":s3:::", 1)[-1]
            assert "/" in bucket_part, (name, object_actions, resource)


def test_thumbx_role_reads_input_writes_output_and_nothing_else() -> None:
    document = render_all(DeploySpec(A, B))["storage/ThumbXRole/permissions"]
    granted = {
        (a, r) for s in _statements(document) for a in _list(s["Action"]) for r in _list(s["Resource"])
    }
    s3 = {pair for pair in granted if pair[0].startswith("s3:")}
    assert s3 == {
        ("s3:GetObject", "arn:aws:s3:::thumbx-storage/input/*"),
        ("s3:GetObjectVersion", "arn:aws:s3:::thumbx-storage/input/*"),
        ("s3:GetObject", "arn:aws:s3:::thumbx-storage/thumbnails/*"),
        ("s3:PutObject", "arn:aws:s3:::thumbx-storage/thumbnails/*"),
        ("s3:AbortMultipartUpload", "arn:aws:s3:::thumbx-storage/thumbnails/*"),
    }
    assert not any("Delete" in action or "List" in action for action, _ in s3)


def test_kms_and_queue_statements_only_when_used() -> None:
    plain = render_all(DeploySpec(A, B, queue_in="compute"))["storage/ThumbXRole/permissions"]
    assert {s["Sid"] for s in _statements(plain)} == {"ReadSources", "WriteThumbnails"}
    full = render_all(DeploySpec(A, B, queue_in="storage", kms_key_arn=KMS))["storage/ThumbXRole/permissions"]
    by_sid = {s["Sid"]: s for s in _statements(full)}
    assert by_sid["UseBucketKey"]["Resource"] == KMS
    assert by_sid["ConsumeQueue"]["Resource"] == f"arn:aws:sqs:us-east-1:{B}:thumbx-events"


def test_trust_names_exact_roles_external_id_and_session_patterns() -> None:
    document = render_all(DeploySpec(A, B, external_id="ext-123"))["storage/ThumbXRole/trust"]
    assume, source = _statements(document)
    assert assume["Principal"] == {
        "AWS": [f"arn:aws:iam::{A}:role/ThumbXLambdaRole", f"arn:aws:iam::{A}:role/ThumbXWorkerTaskRole"]
    }
    assert assume["Action"] == "sts:AssumeRole"
    assert assume["Condition"]["StringEquals"] == {"sts:ExternalId": "ext-123"}
    assert source["Action"] == "sts:SetSourceIdentity"
    pattern = source["Condition"]["StringLike"]["sts:SourceIdentity"]
    session_pattern = assume["Condition"]["StringLike"]["sts:RoleSessionName"]
    # the names the worker, the Lambda template and the doctor use are admitted by the trust
    for name in (RoleSettings("arn:aws:iam::1:role/x").session_name, "thumbx-lambda", DOCTOR_SESSION):
        assert fnmatch.fnmatchcase(name, session_pattern), name
        assert fnmatch.fnmatchcase(name, pattern), name
    without = render_all(DeploySpec(A, B))["storage/ThumbXRole/trust"]
    assert "StringEquals" not in _statements(without)[0]["Condition"]


@pytest.mark.parametrize("arn", [f"arn:aws:iam::{A}:root", "*", A, f"arn:aws:iam::{A}:role/*"])
def test_broad_principals_are_refused(arn: str) -> None:
    with pytest.raises(ValueError, match="broad principal"):
        policies.trust_policy([arn])
    with pytest.raises(ValueError, match="broad principal"):
        policies.bucket_policy("b", [arn])


@pytest.mark.parametrize("queue_in", ["storage", "compute"])
def test_queue_policy_admits_s3_only_for_this_bucket_and_account(queue_in: str) -> None:
    spec = DeploySpec(A, B, queue_in=queue_in, bucket="photos")
    document = render_all(spec)[f"{queue_in}/queue-policy"]
    (s3_statement,) = [
        s for s in _statements(document) if s.get("Principal") == {"Service": "s3.amazonaws.com"}
    ]
    assert s3_statement["Action"] == "sqs:SendMessage"
    assert s3_statement["Resource"] == spec.queue_arn
    assert s3_statement["Condition"]["ArnEquals"] == {"aws:SourceArn": "arn:aws:s3:::photos"}
    assert s3_statement["Condition"]["StringEquals"] == {"aws:SourceAccount": B}
    consumers = [s for s in _statements(document) if s["Sid"] == "CrossAccountConsumers"]
    # the Lambda event source mapping polls with A's Lambda role, so a queue in B must admit exactly it
    if queue_in == "storage":
        assert consumers[0]["Principal"] == {"AWS": [f"arn:aws:iam::{A}:role/ThumbXLambdaRole"]}
    else:
        assert consumers == []


def test_bucket_policy_denies_plain_http_and_strangers() -> None:
    document = render_all(DeploySpec(A, B, bucket="photos"))["storage/bucket-policy"]
    tls, data = _statements(document)
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert data["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == [
        f"arn:aws:iam::{B}:role/ThumbXAdminRole",
        f"arn:aws:iam::{B}:role/ThumbXRole",
    ]
    assert not {"s3:ListBucket", "s3:PutBucketPolicy"} & set(
        data["Action"]
    )  # admin keeps managing the bucket
    # the doctor recognises the statement it ships
    assert evaluate_bucket_policy(json.dumps(document), "photos").status is Status.PASSED


def test_kms_key_policy_has_no_root_and_use_only_through_s3() -> None:
    document = render_all(DeploySpec(A, B, kms_key_arn=KMS))["storage/kms-key-policy"]
    admin, use = _statements(document)
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{B}:role/ThumbXAdminRole"}
    assert use["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}


def test_compute_roles_may_only_assume_thumbx_role_and_read_their_queue() -> None:
    for spec in SPECS:
        documents = render_all(spec)
        for role in ("task-role", "lambda-role"):
            statements = _statements(documents[f"compute/{role}/permissions"])
            assume = statements[0]
            assert assume["Action"] == ["sts:AssumeRole", "sts:SetSourceIdentity"]
            assert assume["Resource"] == f"arn:{spec.partition}:iam::{B}:role/ThumbXRole"
            for statement in statements[1:]:
                assert all(a.startswith("sqs:") for a in statement["Action"])
                assert statement["Resource"] == spec.queue_arn


def test_session_duration_never_exceeds_an_hour() -> None:
    assert policies.MAX_SESSION_SECONDS == config.MAX_SESSION_SECONDS == 3600
    assert RoleSettings("arn:aws:iam::1:role/x").duration_seconds <= 3600
    env = {
        "THUMBX_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/222222222222/q",
        "THUMBX_BUCKET": "b",
        "THUMBX_ROLE_ARN": "arn:aws:iam::222222222222:role/ThumbXRole",
        "THUMBX_SESSION_SECONDS": "3601",
    }
    with pytest.raises(ConfigError, match="THUMBX_SESSION_SECONDS"):
        load_settings(env)
    source = "\n".join(p.read_text() for p in Path(policies.__file__).parent.glob("*.py"))
    for literal in re.findall(r"DurationSeconds\"?\s*[:=]\s*(\d+)", source):
        assert int(literal) <= 3600


def _identity_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, document)
        for name, document in _documents()
        if name.split(":", 1)[1] in policies.IDENTITY_DOCUMENTS
    ]


@pytest.mark.parametrize(
    ("name", "document"), _identity_documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_parliament_finds_nothing_in_the_identity_policies(name: str, document: dict[str, Any]) -> None:
    findings = analyze_policy_string(json.dumps(document)).findings
    assert findings == [], [(f.issue, f.detail, f.location) for f in findings]
    # Community auditors flag only that sts:AssumeRole returns credentials - the compute roles' purpose.
    community = analyze_policy_string(json.dumps(document), include_community_auditors=True).findings
    assert {(f.issue, str(f.location.get("actions"))) for f in community} <= {
        ("CREDENTIALS_EXPOSURE", "['sts:assumerole']")
    }


def test_thumbx_policies_prints_every_document(capsys: pytest.CaptureFixture[str]) -> None:
    from worker.cli import main

    argv = ["policies", "--account-a", A, "--account-b", B, "--external-id", "ext-9", "--queue-in", "compute"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == render_all(DeploySpec(A, B, external_id="ext-9", queue_in="compute"))
    assert set(printed) >= {
        "storage/ThumbXRole/trust",
        "storage/ThumbXRole/permissions",
        "storage/bucket-policy",
        "compute/queue-policy",
        "compute/task-role/permissions",
    }
    with pytest.raises(SystemExit) as exit_info:
        main(["policies", "--account-a", "12345", "--account-b", B])
    assert exit_info.value.code == 2
    assert "not a 12-digit account ID" in capsys.readouterr().err
