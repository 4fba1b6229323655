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

from worker.core import settings
from worker.core.config import RoleSettings, load_settings
from worker.core.errors import ConfigError
from worker.ops import perimeter, policies
from worker.ops.deploy_spec import IDENTITY_DOCUMENTS, DeploySpec, render_all
from worker.ops.doctor import Status, evaluate_bucket_policy
from worker.ops.doctor_probe import SESSION_NAME as DOCTOR_SESSION

A, B = "111111111111", "222222222222"
KMS = "arn:aws:kms:us-east-1:222222222222:key/00000000-0000-0000-0000-000000000000"


def _spec(**changes: Any) -> DeploySpec:
    names: dict[str, Any] = {
        "account_a": A,
        "account_b": B,
        "bucket": "thumbx-storage",
        "admin_role_name": "ThumbXAdminRole",
        "region": "us-east-1",
    }
    return DeploySpec(**{**names, **changes})


SPECS = [
    _spec(),
    _spec(external_id="ext-123", queue_in="compute", kms_key_arn=KMS, uploader_role_name="Up"),
    _spec(queue_in="storage", kms_key_arn=KMS, partition="aws-cn", region="cn-north-1"),
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
            if arn.endswith(":root"):  # only the key's recovery statement, narrowed to named roles
                assert statement["Sid"] == "AccountAdministersThroughNamedRoles", (name, statement)
                assert statement["Condition"]["ArnEquals"]["aws:PrincipalArn"], (name, statement)
                continue
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
    document = render_all(_spec())["storage/ThumbXRole/permissions"]
    granted = {
        (a, r) for s in _statements(document) for a in _list(s["Action"]) for r in _list(s["Resource"])
    }
    assert granted == {  # exactly these, of any service: nothing to delete, list, or reach outside S3
        ("s3:GetObject", "arn:aws:s3:::thumbx-storage/input/*"),
        ("s3:GetObjectVersion", "arn:aws:s3:::thumbx-storage/input/*"),
        ("s3:GetObject", "arn:aws:s3:::thumbx-storage/thumbnails/*"),
        ("s3:PutObject", "arn:aws:s3:::thumbx-storage/thumbnails/*"),
    }
    for statement in _statements(document):  # the bucket of that name in B, not one re-created elsewhere
        assert statement["Condition"] == {"StringEquals": {"s3:ResourceAccount": B}}


def test_kms_and_queue_statements_only_when_used() -> None:
    plain = render_all(_spec(queue_in="compute"))["storage/ThumbXRole/permissions"]
    assert {s["Sid"] for s in _statements(plain)} == {"ReadSources", "WriteThumbnails"}
    full = render_all(_spec(queue_in="storage", kms_key_arn=KMS))["storage/ThumbXRole/permissions"]
    by_sid = {s["Sid"]: s for s in _statements(full)}
    assert by_sid["UseBucketKey"]["Resource"] == KMS
    assert by_sid["UseBucketKey"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    }
    assert by_sid["ConsumeQueue"]["Resource"] == f"arn:aws:sqs:us-east-1:{B}:thumbx-events"
    # the DLQ grant is part of what `thumbx policies` prints (it used to be missing)
    assert by_sid["DeadLetterPermanentFailures"]["Resource"] == f"arn:aws:sqs:us-east-1:{B}:thumbx-events-dlq"


def test_trust_names_exact_roles_external_id_and_session_patterns() -> None:
    document = render_all(_spec(external_id="ext-123"))["storage/ThumbXRole/trust"]
    assume, source = _statements(document)
    assert assume["Principal"] == {
        "AWS": [f"arn:aws:iam::{A}:role/ThumbXLambdaRole", f"arn:aws:iam::{A}:role/ThumbXWorkerTaskRole"]
    }
    assert assume["Action"] == "sts:AssumeRole"
    assert assume["Condition"]["StringEquals"] == {"sts:ExternalId": "ext-123"}
    # AssumeRole itself requires a source identity: a session without one is refused, not anonymous
    assert assume["Condition"]["StringLike"]["sts:SourceIdentity"] == "thumbx-*"
    assert source["Action"] == "sts:SetSourceIdentity"
    pattern = source["Condition"]["StringLike"]["sts:SourceIdentity"]
    session_pattern = assume["Condition"]["StringLike"]["sts:RoleSessionName"]
    # the names the worker, the Lambda template and the doctor use are admitted by the trust
    names = (RoleSettings("arn:aws:iam::1:role/x").session_name, "thumbx-lambda-3f2a", DOCTOR_SESSION)
    for name in (*names, "thumbx-worker-0123456789abcdef0123456789abcdef"):
        assert fnmatch.fnmatchcase(name, session_pattern), name
        assert fnmatch.fnmatchcase(name, pattern), name
    without = render_all(_spec())["storage/ThumbXRole/trust"]
    assert "StringEquals" not in _statements(without)[0]["Condition"]


@pytest.mark.parametrize("arn", [f"arn:aws:iam::{A}:root", "*", A, f"arn:aws:iam::{A}:role/*"])
def test_broad_principals_are_refused(arn: str) -> None:
    with pytest.raises(ValueError, match="broad principal"):
        policies.trust_policy([arn])
    with pytest.raises(ValueError, match="broad principal"):
        perimeter.bucket_policy("b", perimeter.BucketPrincipals(arn, [f"arn:aws:iam::{B}:role/Admin"]))


@pytest.mark.parametrize("queue_in", ["storage", "compute"])
def test_queue_policy_admits_s3_only_for_this_bucket_and_account(queue_in: str) -> None:
    spec = _spec(queue_in=queue_in, bucket="photos")
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


def test_bucket_policy_denies_every_action_to_unnamed_principals_and_caps_the_named() -> None:
    spec = _spec(
        bucket="photos", uploader_role_name="Up", backfill_role_name="Fill", break_glass_role_name="Glass"
    )
    document = render_all(spec)["storage/bucket-policy"]
    by_sid = {s["Sid"]: s for s in _statements(document)}
    assert by_sid["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    unnamed = by_sid["DenyUnnamedPrincipals"]
    assert unnamed["Action"] == "s3:*"  # not a list of object actions: ListBucket, tags, replication too
    assert unnamed["Resource"] == ["arn:aws:s3:::photos", "arn:aws:s3:::photos/*"]
    role = f"arn:aws:iam::{B}:role/"
    assert unnamed["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == sorted(
        [
            f"{role}ThumbXRole",
            f"{role}ThumbXAdminRole",
            f"{role}Glass",
            f"{role}Up",
            f"{role}Fill",
            f"{role}{perimeter.ANALYZER_ROLE_PATH}",
        ]
    )
    capped = {
        s["Condition"]["ArnEquals"]["aws:PrincipalArn"]
        for s in by_sid.values()
        if "ArnEquals" in s.get("Condition", {})
    }
    # every named role but the admin and break-glass roles is capped to its job
    assert capped == {
        f"{role}ThumbXRole",
        f"{role}Up",
        f"{role}Fill",
        f"{role}{perimeter.ANALYZER_ROLE_PATH}",
    }
    assert by_sid["ThumbXRoleWritesOnlyThumbnails"]["NotResource"] == "arn:aws:s3:::photos/thumbnails/*"
    assert by_sid["UploaderOnlyUnderInput"]["NotResource"] == "arn:aws:s3:::photos/input/*"
    assert all(s["Effect"] == "Deny" for s in by_sid.values())  # it grants nothing
    # the doctor recognises the statement it ships
    assert evaluate_bucket_policy(json.dumps(document), "photos").status is Status.PASSED
    plain = {s["Sid"] for s in _statements(render_all(_spec())["storage/bucket-policy"])}
    assert not {"UploaderOnlyUploads", "BackfillReadsOnlyThumbnails"} & plain


def test_kms_key_policy_recovers_through_named_roles_and_separates_administration_from_use() -> None:
    document = render_all(_spec(kms_key_arn=KMS, uploader_role_name="Up", break_glass_role_name="Glass"))[
        "storage/kms-key-policy"
    ]
    account, admin, use = _statements(document)
    admins = [f"arn:aws:iam::{B}:role/Glass", f"arn:aws:iam::{B}:role/ThumbXAdminRole"]
    assert account["Principal"] == {"AWS": f"arn:aws:iam::{B}:root"}
    assert account["Condition"] == {"ArnEquals": {"aws:PrincipalArn": admins}}
    assert admin["Principal"] == {"AWS": admins}
    for statement in (account, admin):
        assert "kms:PutKeyPolicy" in statement["Action"]
        assert not {"kms:*", "kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:CreateGrant"} & set(
            statement["Action"]
        )
    assert f"arn:aws:iam::{B}:role/Up" in use["Principal"]["AWS"]  # uploads can generate data keys
    assert use["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert use["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
        "StringLike": {
            "kms:EncryptionContext:aws:s3:arn": [
                "arn:aws:s3:::thumbx-storage",
                "arn:aws:s3:::thumbx-storage/*",
            ]
        },
    }


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
                assert statement["Resource"] in (spec.queue_arn, spec.dlq_arn)


def test_session_duration_never_exceeds_an_hour() -> None:
    assert policies.MAX_SESSION_SECONDS == settings.MAX_SESSION_SECONDS == 3600
    assert RoleSettings("arn:aws:iam::1:role/x").duration_seconds <= 3600
    env = {
        "THUMBX_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/222222222222/q",
        "THUMBX_BUCKET": "images-b",
        "THUMBX_ROLE_ARN": "arn:aws:iam::222222222222:role/ThumbXRole",
        "THUMBX_SESSION_SECONDS": "3601",
    }
    with pytest.raises(ConfigError, match="THUMBX_SESSION_SECONDS"):
        load_settings(env)
    source = "\n".join(p.read_text() for p in Path(policies.__file__).parents[1].rglob("*.py"))
    for literal in re.findall(r"DurationSeconds\"?\s*[:=]\s*(\d+)", source):
        assert int(literal) <= 3600


def _identity_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, document) for name, document in _documents() if name.split(":", 1)[1] in IDENTITY_DOCUMENTS
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


_NAMES = ["--account-a", A, "--account-b", B, "--bucket", "photos", "--admin-role-name", "Ops"]


def test_thumbx_policies_prints_every_document_the_templates_carry(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.cli.main import main

    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert main(["policies", *_NAMES, "--region", "eu-west-1", "--external-id", "ext-9"]) == 0
    out, err = capsys.readouterr()
    printed = json.loads(out)
    spec = _spec(bucket="photos", admin_role_name="Ops", region="eu-west-1", external_id="ext-9")
    assert spec.queue_in == "compute"  # the templates' default placement
    assert printed == render_all(spec)
    assert set(printed) == {
        "storage/ThumbXRole/trust",
        "storage/ThumbXRole/permissions",
        "storage/bucket-policy",
        "storage/trail-bucket-policy",
        "compute/task-role/trust",
        "compute/task-role/permissions",
        "compute/execution-role/trust",
        "compute/lambda-role/trust",
        "compute/lambda-role/permissions",
        "compute/queue-policy",
        "compute/dlq-policy",
    }
    task = {s["Sid"] for s in printed["compute/task-role/permissions"]["Statement"]}
    assert "DeadLetterPermanentFailures" in task
    # every name it assumed is said, with the flag that changes it
    assert "assuming queue name 'thumbx-events'" in err
    assert "--storage-stack to change" in err
    assert "ThumbXAdminRole" not in out  # no default admin name that would lock the real admin out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--account-a", "12345", "--account-b", B], "not a 12-digit account ID"),
        ([*_NAMES[:4], "--admin-role-name", "Ops"], "--bucket"),
        (_NAMES[:6], "--admin-role-name"),
    ],
)
def test_thumbx_policies_requires_the_names_it_must_not_guess(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    from worker.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["policies", *args, "--region", "eu-west-1"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("prefixes", "message"),
    [
        (["--input-prefix", "in"], "must end with '/'"),
        (["--input-prefix", "input/", "--output-prefix", "input/thumbs/"], "must not overlap"),
        (["--output-prefix", ""], "must end with '/'"),
    ],
)
def test_thumbx_policies_validates_prefixes_like_the_worker(
    capsys: pytest.CaptureFixture[str], prefixes: list[str], message: str
) -> None:
    from worker.cli.main import main

    assert main(["policies", *_NAMES, "--region", "eu-west-1", *prefixes]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_thumbx_policies_needs_a_region_and_writes_one_file_per_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.cli.main import main

    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert main(["policies", *_NAMES]) == 2
    assert "--region: required" in capsys.readouterr().err
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    argv = ["policies", *_NAMES, "--queue-in", "storage", "--kms-key-arn", KMS, "--out-dir", str(tmp_path)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "region eu-central-1 (from the environment" in err
    expected = render_all(
        _spec(
            bucket="photos", admin_role_name="Ops", region="eu-central-1", queue_in="storage", kms_key_arn=KMS
        )
    )
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json"))
    assert written == sorted(f"{name}.json" for name in expected)
    assert sorted(Path(line).relative_to(tmp_path).as_posix() for line in out.split()) == written
    for name, document in expected.items():
        assert json.loads((tmp_path / f"{name}.json").read_text()) == document
