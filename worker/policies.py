"""IAM documents (pure): the one source of truth for what thumbx may do.

The same functions render the policies that ``thumbx demo`` provisions in the emulator, that
``thumbx policies`` prints for review, and that the deployment templates carry. Nothing here talks to AWS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Policy = dict[str, Any]
VERSION = "2012-10-17"
ROLE_NAME = "ThumbXRole"


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


def role_arn(account_id: str, role_name: str = ROLE_NAME, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:role/{role_name}"


def trust_policy(principal_arns: Sequence[str], external_id: str | None = None) -> Policy:
    """ThumbXRole's trust: exactly the named principals (never ``:root``), optional ExternalId.

    ``sts:SetSourceIdentity`` is granted alongside ``sts:AssumeRole`` so sessions carry a source identity
    into CloudTrail.
    """
    if not principal_arns:
        raise ValueError("trust_policy needs at least one principal ARN")
    for arn in principal_arns:
        if arn.endswith(":root") or "*" in arn:
            raise ValueError(f"refusing a broad trust principal: {arn}")
    statement: dict[str, Any] = {
        "Sid": "AssumeFromComputeAccount",
        "Effect": "Allow",
        "Principal": {"AWS": sorted(principal_arns)},
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
    }
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": VERSION, "Statement": [statement]}


def role_permission_policy(scope: StorageScope) -> Policy:
    """ThumbXRole's permissions: read ``input/*``, write ``thumbnails/*``; no Delete, no List."""
    bucket_arn = f"arn:{scope.partition}:s3:::{scope.bucket}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadSources",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"{bucket_arn}/{scope.input_prefix}*",
        },
        {
            "Sid": "WriteThumbnails",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
            "Resource": f"{bucket_arn}/{scope.output_prefix}*",
        },
    ]
    statements += queue_statements(scope.queue_arn, scope.dlq_arn)
    if scope.kms_key_arn:
        statements.append(
            {
                "Sid": "UseBucketKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": scope.kms_key_arn,
            }
        )
    return {"Version": VERSION, "Statement": statements}


def queue_statements(queue_arn: str | None, dlq_arn: str | None) -> list[dict[str, Any]]:
    """Consume the queue and dead-letter to the DLQ: granted to whichever identity reads the queue
    (ThumbXRole when the queue lives in B, A's own role when it lives in A)."""
    statements: list[dict[str, Any]] = []
    if queue_arn:
        # AWS authorises DeleteMessageBatch / ChangeMessageVisibilityBatch by sqs:DeleteMessage /
        # sqs:ChangeMessageVisibility; emulators check the batch names. The trailing wildcard matches only
        # those (and nothing else in AWS), so one document is right in both.
        statements.append(
            {
                "Sid": "ConsumeQueue",
                "Effect": "Allow",
                "Action": [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage*",
                    "sqs:ChangeMessageVisibility*",
                    "sqs:GetQueueAttributes",
                ],
                "Resource": queue_arn,
            }
        )
    if dlq_arn:
        statements.append(
            {
                "Sid": "DeadLetterPermanentFailures",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes"],
                "Resource": dlq_arn,
            }
        )
    return statements


def compute_identity_policy(
    target_role_arn: str, *, queue_arn: str | None = None, dlq_arn: str | None = None
) -> Policy:
    """Account A's task/Lambda role (or the demo's stand-in user): may assume ThumbXRole, and consume the
    queue only when the queue lives in A."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AssumeThumbXRole",
                "Effect": "Allow",
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                "Resource": target_role_arn,
            },
            *queue_statements(queue_arn, dlq_arn),
        ],
    }
