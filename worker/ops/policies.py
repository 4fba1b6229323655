"""IAM documents for roles and queues (pure): what thumbx's identities may do.

The same functions render the policies that ``thumbx demo`` provisions in the emulator, that
``thumbx policies`` prints for review, and that the deployment templates in ``deploy/`` carry (through
:mod:`worker.ops.deploy_spec`, the one place that composes a deployment's documents). The bucket's and the
key's resource policies live in :mod:`worker.ops.perimeter`. Nothing here talks to AWS.

Every argument is a plain string, so a caller may pass CloudFormation substitutions such as
``${AWS::AccountId}``; the renderer wraps those strings in ``Fn::Sub``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Policy = dict[str, Any]
Statement = dict[str, Any]
VERSION = "2012-10-17"
ROLE_NAME = "ThumbXRole"
SESSION_PATTERN = "thumbx-*"  # role session names and source identities the trust admits
MAX_SESSION_SECONDS = 3600  # role chaining (task/Lambda role -> ThumbXRole) caps sessions at one hour

# AWS authorises DeleteMessageBatch / ChangeMessageVisibilityBatch by sqs:DeleteMessage /
# sqs:ChangeMessageVisibility; emulators check the batch names. The trailing wildcard matches only those
# (and nothing else in AWS), so one document is right in both.
QUEUE_CONSUMER_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage*",
    "sqs:ChangeMessageVisibility*",
    "sqs:GetQueueAttributes",
)
# ThumbXRole's object actions. GetObjectVersion: the worker renders the exact version an event names.
# No AbortMultipartUpload: thumbnails are single PUTs.
READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
WRITE_ACTIONS = ("s3:GetObject", "s3:PutObject")


@dataclass(frozen=True)
class StorageScope:
    """What ThumbXRole may touch in account B."""

    bucket: str
    input_prefix: str = "input/"
    output_prefix: str = "thumbnails/"
    queue_arn: str | None = None  # set when the queue lives in B and is read with the role
    dlq_arn: str | None = None  # set when the worker dead-letters permanent failures itself
    kms_key_arn: str | None = None
    partition: str = "aws"
    account_id: str | None = None  # B: every S3 statement then requires s3:ResourceAccount = B
    region: str | None = None  # with kms_key_arn: the key is used only through S3 in this region

    @property
    def bucket_arn(self) -> str:
        return bucket_arn(self.bucket, self.partition)


def bucket_arn(bucket: str, partition: str = "aws") -> str:
    return f"arn:{partition}:s3:::{bucket}"


def role_arn(account_id: str, role_name: str = ROLE_NAME, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:role/{role_name}"


def queue_arn(account_id: str, queue_name: str, region: str, partition: str = "aws") -> str:
    return f"arn:{partition}:sqs:{region}:{account_id}:{queue_name}"


def refuse_broad(principal: str) -> None:
    if principal.endswith(":root") or "*" in principal or principal.isdigit():
        raise ValueError(f"refusing a broad principal: {principal}")


def trust_policy(
    principal_arns: Sequence[str],
    external_id: str | None = None,
    *,
    session_pattern: str | None = SESSION_PATTERN,
) -> Policy:
    """ThumbXRole's trust: exactly the named principals (never ``:root``), optional ExternalId.

    ``sts:AssumeRole`` requires a session name *and* a source identity matching ``session_pattern`` (an
    AssumeRole without ``SourceIdentity`` is refused, so every session is attributable in CloudTrail);
    ``sts:SetSourceIdentity``, which such a call also needs, is limited to the same pattern.
    ``session_pattern=None`` drops the name conditions.
    """
    if not principal_arns:
        raise ValueError("trust_policy needs at least one principal ARN")
    for arn in principal_arns:
        refuse_broad(arn)
    principals = {"AWS": sorted(principal_arns)}
    assume: Statement = {
        "Sid": "AssumeFromComputeAccount",
        "Effect": "Allow",
        "Principal": principals,
        "Action": "sts:AssumeRole",
    }
    conditions: dict[str, dict[str, str]] = {}
    if external_id:
        conditions["StringEquals"] = {"sts:ExternalId": external_id}
    if session_pattern:
        conditions["StringLike"] = {
            "sts:RoleSessionName": session_pattern,
            "sts:SourceIdentity": session_pattern,
        }
    if conditions:
        assume["Condition"] = conditions
    source: Statement = {
        "Sid": "SetSourceIdentity",
        "Effect": "Allow",
        "Principal": principals,
        "Action": "sts:SetSourceIdentity",
    }
    if session_pattern:
        source["Condition"] = {"StringLike": {"sts:SourceIdentity": session_pattern}}
    return {"Version": VERSION, "Statement": [assume, source]}


def role_permission_policy(scope: StorageScope) -> Policy:
    """ThumbXRole's permissions: read ``input/*``, write ``thumbnails/*``; no Delete, no List.

    KMS statements appear only when the bucket uses a customer-managed key, SQS statements only when the
    queue lives in B and is read with the role's credentials.
    """
    objects = f"{scope.bucket_arn}/"
    in_account = (
        {"Condition": {"StringEquals": {"s3:ResourceAccount": scope.account_id}}} if scope.account_id else {}
    )
    statements: list[Statement] = [
        {
            "Sid": "ReadSources",
            "Effect": "Allow",
            "Action": list(READ_ACTIONS),
            "Resource": f"{objects}{scope.input_prefix}*",
            **in_account,
        },
        {
            "Sid": "WriteThumbnails",
            "Effect": "Allow",
            "Action": list(WRITE_ACTIONS),
            "Resource": f"{objects}{scope.output_prefix}*",
            **in_account,
        },
    ]
    statements += queue_statements(scope.queue_arn, scope.dlq_arn)
    if scope.kms_key_arn:
        use: Statement = {
            "Sid": "UseBucketKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": scope.kms_key_arn,
        }
        if scope.region:
            use["Condition"] = {"StringEquals": {"kms:ViaService": f"s3.{scope.region}.amazonaws.com"}}
        statements.append(use)
    return {"Version": VERSION, "Statement": statements}


def queue_statements(queue_arn: str | None, dlq_arn: str | None) -> list[Statement]:
    """Consume the queue and dead-letter to the DLQ: granted to whichever identity reads the queue
    (ThumbXRole when the queue lives in B, A's own role when it lives in A)."""
    statements: list[Statement] = []
    if queue_arn:
        statements.append(
            {
                "Sid": "ConsumeQueue",
                "Effect": "Allow",
                "Action": list(QUEUE_CONSUMER_ACTIONS),
                "Resource": queue_arn,
            }
        )
    if dlq_arn:
        statements.append(
            {
                "Sid": "DeadLetterPermanentFailures",
                "Effect": "Allow",
                "Action": ["sqs:GetQueueAttributes", "sqs:SendMessage"],
                "Resource": dlq_arn,
            }
        )
    return statements


def compute_identity_policy(
    target_role_arn: str,
    *,
    queue_arn: str | None = None,
    dlq_arn: str | None = None,
) -> Policy:
    """Account A's task/Lambda role (or the demo's stand-in user): may assume ThumbXRole.

    ``queue_arn`` adds the consumer actions on a queue the identity reads with its own credentials (queue
    in A, or the Lambda event source mapping, which always polls with the function's role).
    """
    statements: list[Statement] = [
        {
            "Sid": "AssumeThumbXRole",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Resource": target_role_arn,
        },
        *queue_statements(queue_arn, dlq_arn),
    ]
    return {"Version": VERSION, "Statement": statements}


def _deny_insecure_queue_transport(queue: str) -> Statement:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sqs:*",
        "Resource": queue,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def queue_policy(
    queue: str,
    bucket: str,
    bucket_account: str,
    *,
    consumer_arns: Sequence[str] = (),
    partition: str = "aws",
) -> Policy:
    """The queue's policy: S3 may send only for this bucket in this account; optional named consumers.

    ``consumer_arns`` names roles of another account that poll the queue themselves (the Lambda event
    source mapping when the queue lives in B).
    """
    statements: list[Statement] = [
        {
            "Sid": "AcceptBucketNotifications",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue,
            "Condition": {
                "ArnEquals": {"aws:SourceArn": bucket_arn(bucket, partition)},
                "StringEquals": {"aws:SourceAccount": bucket_account},
            },
        },
        _deny_insecure_queue_transport(queue),
    ]
    if consumer_arns:
        for arn in consumer_arns:
            refuse_broad(arn)
        statements.insert(
            1,
            {
                "Sid": "CrossAccountConsumers",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(consumer_arns)},
                "Action": list(QUEUE_CONSUMER_ACTIONS),
                "Resource": queue,
            },
        )
    return {"Version": VERSION, "Statement": statements}


def dead_letter_queue_policy(dlq: str) -> Policy:
    """The DLQ's policy: nothing without TLS. Its senders are granted by their identity policies (the
    worker's queue credentials, same account) and SQS's own redrive needs no grant."""
    return {"Version": VERSION, "Statement": [_deny_insecure_queue_transport(dlq)]}


def service_trust_policy(service: str, account_id: str) -> Policy:
    """Trust for a role an AWS service assumes (ECS tasks, Lambda): that service, for this account only."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ServiceAssumesForThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }
