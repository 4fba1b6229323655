"""The requests of the access matrix, per scenario, with the decision least privilege demands."""

from __future__ import annotations

from typing import Any

from tools.iam_matrix.matrix import BUCKET, EXTERNAL_ID, KMS_KEY, REGION, B, C, Request, Scenario

OBJECTS = f"arn:aws:s3:::{BUCKET}"
ROLE = f"arn:aws:iam::{B}:role/ThumbXRole"
SOURCE = "thumbx-worker-8f0e1c2d3b4a"
NO_TLS: dict[str, Any] = {"aws:SecureTransport": "false"}


def _trust(
    i: int,
    who: str,
    what: str,
    allowed: bool,
    *,
    session: str = SOURCE,
    context: dict[str, Any] | None = None,
) -> Request:
    keys: dict[str, Any] = {
        "sts:RoleSessionName": session,
        "sts:SourceIdentity": session,
        "sts:ExternalId": EXTERNAL_ID,
    }
    keys.update(context or {})
    actions = (
        ("sts:AssumeRole", "sts:SetSourceIdentity") if keys.get("sts:SourceIdentity") else ("sts:AssumeRole",)
    )
    return Request(f"T{i:02}", "trust", who, what, actions, ROLE, B, "trust", allowed, keys)


def trust_requests() -> list[Request]:
    lam = "thumbx-lambda-0a1b2c3d4e5f"
    return [
        _trust(1, "task role", "assume ThumbXRole (session and source identity thumbx-worker-<task>)", True),
        _trust(2, "Lambda role", "assume ThumbXRole (thumbx-lambda-<environment>)", True, session=lam),
        _trust(3, "task role", "assume with a wrong external ID", False, context={"sts:ExternalId": "guess"}),
        _trust(4, "task role", "assume without an external ID", False, context={"sts:ExternalId": None}),
        _trust(5, "task role", "assume with a session name outside thumbx-*", False, session="ops-debug"),
        _trust(
            6, "task role", "assume without a source identity", False, context={"sts:SourceIdentity": None}
        ),
        _trust(
            7,
            "task role",
            "assume with a source identity outside thumbx-*",
            False,
            context={"sts:SourceIdentity": "root"},
        ),
        _trust(8, "other role in A", "assume ThumbXRole (sts:* in its own policy)", False),
        _trust(9, "root of A", "assume ThumbXRole as account A's root", False),
        _trust(10, "intruder in C", "assume ThumbXRole from another account", False),
        _trust(11, "execution role", "assume ThumbXRole as the ECS execution role", False),
        _trust(12, "stranger in B", "assume ThumbXRole from inside B", False),
    ]


def _s3(i: int, who: str, what: str, action: str, key: str | None, allowed: bool, **context: Any) -> Request:
    resource = OBJECTS if key is None else f"{OBJECTS}/{key}"
    account = context.pop("account", B)
    keys = {"s3:ResourceAccount": account, **context}
    policy = "bucket" if account == B else None
    return Request(f"D{i:02}", "data", who, what, (action,), resource, account, policy, allowed, keys)


def data_requests() -> list[Request]:
    src, out = "input/2026/beach.jpg", "thumbnails/2026/beach.jpg/sm.webp"
    t = "ThumbXRole"
    return [
        _s3(1, t, "read an upload", "s3:GetObject", src, True),
        _s3(2, t, "read the exact version an event names", "s3:GetObjectVersion", src, True),
        _s3(3, t, "read a thumbnail (idempotency HEAD)", "s3:GetObject", out, True),
        _s3(4, t, "write a thumbnail", "s3:PutObject", out, True),
        _s3(5, t, "write under the input prefix (the loop)", "s3:PutObject", "input/x.jpg", False),
        _s3(6, t, "write outside both prefixes", "s3:PutObject", "private/x.jpg", False),
        _s3(7, t, "read outside both prefixes", "s3:GetObject", "private/payroll.csv", False),
        _s3(8, t, "delete a thumbnail", "s3:DeleteObject", out, False),
        _s3(9, t, "list the bucket", "s3:ListBucket", None, False),
        _s3(10, t, "abort a multipart upload (single PUTs only)", "s3:AbortMultipartUpload", out, False),
        _s3(11, t, "set an object ACL", "s3:PutObjectAcl", out, False),
        _s3(
            12, t, "read the same bucket name owned by another account", "s3:GetObject", src, False, account=C
        ),
        _s3(13, t, "read an upload without TLS", "s3:GetObject", src, False, **NO_TLS),
        _s3(14, "task role", "read an upload with A's own credentials", "s3:GetObject", src, False),
        _s3(15, "uploader", "upload under the input prefix", "s3:PutObject", src, True),
        _s3(16, "uploader", "write a thumbnail", "s3:PutObject", out, False),
        _s3(17, "uploader", "read an upload back", "s3:GetObject", src, False),
        _s3(18, "uploader", "delete an upload", "s3:DeleteObject", src, False),
        _s3(19, "backfill", "list the input prefix", "s3:ListBucket", None, True, **{"s3:prefix": "input/"}),
        _s3(20, "backfill", "list the whole bucket", "s3:ListBucket", None, False, **{"s3:prefix": ""}),
        _s3(21, "backfill", "read a thumbnail's metadata", "s3:GetObject", out, True),
        _s3(22, "backfill", "read an upload", "s3:GetObject", src, False),
        _s3(23, "admin", "list the bucket", "s3:ListBucket", None, True),
        _s3(24, "admin", "delete an upload", "s3:DeleteObject", src, True),
        _s3(25, "admin", "change the bucket policy", "s3:PutBucketPolicy", None, True),
        _s3(26, "admin", "read an upload without TLS", "s3:GetObject", src, False, **NO_TLS),
        _s3(27, "break-glass", "delete the bucket policy", "s3:DeleteBucketPolicy", None, True),
        _s3(28, "stranger in B", "list the bucket (s3:* in its own policy)", "s3:ListBucket", None, False),
        _s3(29, "stranger in B", "read an upload", "s3:GetObject", src, False),
        _s3(30, "stranger in B", "read an upload's tags", "s3:GetObjectTagging", src, False),
        _s3(
            31, "stranger in B", "list a multipart upload's parts", "s3:ListMultipartUploadParts", src, False
        ),
        _s3(32, "stranger in B", "change the notifications", "s3:PutBucketNotification", None, False),
        _s3(
            33,
            "stranger in B",
            "replicate to a bucket outside",
            "s3:PutReplicationConfiguration",
            None,
            False,
        ),
        _s3(34, "intruder in C", "read an upload", "s3:GetObject", src, False),
        _s3(35, "intruder in C", "list the bucket", "s3:ListBucket", None, False),
        _s3(36, "Access Analyzer", "read the bucket policy it analyses", "s3:GetBucketPolicy", None, True),
        _s3(37, "Access Analyzer", "read an upload", "s3:GetObject", src, False),
    ]


def queue_requests(scenario: Scenario) -> list[Request]:
    spec = scenario.spec
    queue, dlq, account = spec.queue_arn, spec.dlq_arn, spec.queue_account
    consumer = "task role" if scenario.queue_in == "compute" else "ThumbXRole"
    other = "ThumbXRole" if scenario.queue_in == "compute" else "task role"
    lambda_sends = scenario.queue_in == "compute"  # with the queue in B it dead-letters through ThumbXRole

    def s3(i: int, what: str, allowed: bool, source: str | None, source_account: str | None) -> Request:
        context = {"aws:SourceArn": source, "aws:SourceAccount": source_account}
        return Request(
            f"Q{i:02}", "queue", "S3", what, ("sqs:SendMessage",), queue, account, "queue", allowed, context
        )

    def q(i: int, who: str, what: str, action: str, target: str, allowed: bool, **context: Any) -> Request:
        group, prefix = ("queue", "Q") if target == queue else ("dlq", "L")
        return Request(
            f"{prefix}{i:02}", group, who, what, (action,), target, account, group, allowed, context
        )

    bucket = f"arn:aws:s3:::{BUCKET}"
    return [
        s3(1, "deliver an ObjectCreated notification from the bucket", True, bucket, B),
        s3(2, "deliver a notification for another bucket", False, "arn:aws:s3:::elsewhere", B),
        s3(3, "deliver a notification claiming another account", False, bucket, C),
        s3(4, "deliver without a source", False, None, None),
        q(5, consumer, "receive events", "sqs:ReceiveMessage", queue, True),
        q(6, "Lambda role", "receive events (event source mapping)", "sqs:ReceiveMessage", queue, True),
        q(7, consumer, "delete a handled event", "sqs:DeleteMessage", queue, True),
        q(8, "intruder in C", "receive events", "sqs:ReceiveMessage", queue, False),
        q(9, consumer, "receive events without TLS", "sqs:ReceiveMessage", queue, False, **NO_TLS),
        q(10, other, "receive events with the other account's identity", "sqs:ReceiveMessage", queue, False),
        q(1, consumer, "dead-letter a permanent failure", "sqs:SendMessage", dlq, True),
        q(2, "Lambda role", "dead-letter with its own credentials", "sqs:SendMessage", dlq, lambda_sends),
        q(3, "intruder in C", "send to the DLQ", "sqs:SendMessage", dlq, False),
        q(4, consumer, "dead-letter without TLS", "sqs:SendMessage", dlq, False, **NO_TLS),
        q(5, consumer, "receive from the DLQ (only redrive may)", "sqs:ReceiveMessage", dlq, False),
    ]


def key_requests() -> list[Request]:
    via = {
        "kms:ViaService": f"s3.{REGION}.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{BUCKET}",
    }
    direct = {"kms:ViaService": None, "kms:EncryptionContext:aws:s3:arn": None}

    def k(i: int, who: str, what: str, action: str, allowed: bool, context: dict[str, Any]) -> Request:
        return Request(f"K{i:02}", "key", who, what, (action,), KMS_KEY, B, "key", allowed, dict(context))

    other = {**via, "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::elsewhere"}
    return [
        k(1, "ThumbXRole", "decrypt an upload through S3", "kms:Decrypt", True, via),
        k(
            2,
            "ThumbXRole",
            "generate a data key for a thumbnail through S3",
            "kms:GenerateDataKey",
            True,
            via,
        ),
        k(3, "ThumbXRole", "decrypt directly, not through S3", "kms:Decrypt", False, direct),
        k(4, "ThumbXRole", "decrypt another bucket's object through S3", "kms:Decrypt", False, other),
        k(5, "uploader", "generate a data key for an upload through S3", "kms:GenerateDataKey", True, via),
        k(6, "admin", "decrypt directly", "kms:Decrypt", False, direct),
        k(7, "admin", "change the key policy", "kms:PutKeyPolicy", True, {}),
        k(8, "break-glass", "schedule the key's deletion", "kms:ScheduleKeyDeletion", True, {}),
        k(9, "admin", "create a grant (would hand out use)", "kms:CreateGrant", False, {}),
        k(10, "stranger in B", "decrypt through S3 (kms:* in its own policy)", "kms:Decrypt", False, via),
        k(11, "stranger in B", "change the key policy", "kms:PutKeyPolicy", False, {}),
        k(12, "task role", "decrypt from account A", "kms:Decrypt", False, via),
    ]


def requests_for(scenario: Scenario) -> list[Request]:
    found = trust_requests() + data_requests() + queue_requests(scenario)
    return found + (key_requests() if scenario.kms else [])
