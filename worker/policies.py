"""IAM documents (pure): the one source of truth for what thumbx may do.

The same functions render the policies that ``thumbx demo`` provisions in the emulator, that
``thumbx policies`` prints for review, and that the deployment templates in ``deploy/`` carry (they are
written by ``python -m worker.deploy_render``). Nothing here talks to AWS.

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

# Object-level actions: what the bucket policy keeps away from everyone but the named roles.
DATA_ACTIONS = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:RestoreObject",
    "s3:GetObjectAttributes",
)
# AWS authorises DeleteMessageBatch / ChangeMessageVisibilityBatch by sqs:DeleteMessage /
# sqs:ChangeMessageVisibility; emulators check the batch names. The trailing wildcard matches only those
# (and nothing else in AWS), so one document is right in both.
QUEUE_CONSUMER_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage*",
    "sqs:ChangeMessageVisibility*",
    "sqs:GetQueueAttributes",
)


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

    @property
    def bucket_arn(self) -> str:
        return bucket_arn(self.bucket, self.partition)


def bucket_arn(bucket: str, partition: str = "aws") -> str:
    return f"arn:{partition}:s3:::{bucket}"


def role_arn(account_id: str, role_name: str = ROLE_NAME, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:role/{role_name}"


def queue_arn(account_id: str, queue_name: str, region: str, partition: str = "aws") -> str:
    return f"arn:{partition}:sqs:{region}:{account_id}:{queue_name}"


def _refuse_broad(principal: str) -> None:
    if principal.endswith(":root") or "*" in principal or principal.isdigit():
        raise ValueError(f"refusing a broad principal: {principal}")


def trust_policy(
    principal_arns: Sequence[str],
    external_id: str | None = None,
    *,
    session_pattern: str | None = SESSION_PATTERN,
) -> Policy:
    """ThumbXRole's trust: exactly the named principals (never ``:root``), optional ExternalId.

    ``sts:AssumeRole`` is limited to session names matching ``session_pattern``; ``sts:SetSourceIdentity``
    is granted in its own statement, limited to source identities matching the same pattern, so sessions
    carry a source identity into CloudTrail. ``session_pattern=None`` drops both name conditions.
    """
    if not principal_arns:
        raise ValueError("trust_policy needs at least one principal ARN")
    for arn in principal_arns:
        _refuse_broad(arn)
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
        conditions["StringLike"] = {"sts:RoleSessionName": session_pattern}
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
    statements: list[Statement] = [
        {
            "Sid": "ReadSources",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"{objects}{scope.input_prefix}*",
        },
        {
            "Sid": "WriteThumbnails",
            "Effect": "Allow",
            "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
            "Resource": f"{objects}{scope.output_prefix}*",
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


def bucket_policy(
    bucket: str,
    data_principal_arns: Sequence[str],
    *,
    partition: str = "aws",
) -> Policy:
    """B's bucket policy: deny any request without TLS; deny object access to everyone not named.

    The policy grants nothing (same-account roles get access from their identity policies); it only
    denies. ``aws:PrincipalArn`` is the role ARN for assumed-role sessions, so naming ThumbXRole and the
    admin role admits every session of those roles and nobody else, whatever their identity policies say.
    """
    if not data_principal_arns:
        raise ValueError("bucket_policy needs the principals allowed to touch objects")
    for arn in data_principal_arns:
        _refuse_broad(arn)
    arn = bucket_arn(bucket, partition)
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyDataAccessToOthers",
                "Effect": "Deny",
                "Principal": "*",
                "Action": list(DATA_ACTIONS),
                "Resource": f"{arn}/*",
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": sorted(data_principal_arns)}},
            },
        ],
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
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": queue,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]
    if consumer_arns:
        for arn in consumer_arns:
            _refuse_broad(arn)
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


def kms_key_policy(
    admin_role_arn: str,
    user_role_arns: Sequence[str],
    *,
    region: str,
    partition: str = "aws",
) -> Policy:
    """The bucket key's policy: the admin role administers it; ThumbXRole uses it only through S3.

    No ``:root`` statement: key administration is delegated to the named admin role, so deploy the key
    with that role (KMS refuses a policy that would lock out its caller).
    """
    for arn in (admin_role_arn, *user_role_arns):
        _refuse_broad(arn)
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AdministerKey",
                "Effect": "Allow",
                "Principal": {"AWS": admin_role_arn},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "UseKeyThroughS3",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(user_role_arns)},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            },
        ],
    }


def trail_bucket_policy(
    trail_bucket: str, trail_arn: str, account_id: str, *, partition: str = "aws"
) -> Policy:
    """The CloudTrail log bucket's policy: CloudTrail may write, for this trail only, over TLS only."""
    arn = bucket_arn(trail_bucket, partition)
    source = {"StringEquals": {"aws:SourceArn": trail_arn}}
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "CloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": arn,
                "Condition": source,
            },
            {
                "Sid": "CloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{arn}/AWSLogs/{account_id}/*",
                "Condition": {
                    "StringEquals": {
                        "aws:SourceArn": trail_arn,
                        "s3:x-amz-acl": "bucket-owner-full-control",
                    }
                },
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


@dataclass(frozen=True)
class DeploySpec:
    """Everything the documents of one deployment depend on (names as the templates default them)."""

    account_a: str
    account_b: str
    bucket: str = "thumbx-storage"
    region: str = "us-east-1"
    external_id: str | None = None
    queue_in: str = "storage"  # "storage" (account B) or "compute" (account A)
    queue_name: str = "thumbx-events"
    role_name: str = ROLE_NAME
    task_role_name: str = "ThumbXWorkerTaskRole"
    lambda_role_name: str = "ThumbXLambdaRole"
    admin_role_name: str = "ThumbXAdminRole"
    input_prefix: str = "input/"
    output_prefix: str = "thumbnails/"
    kms_key_arn: str | None = None
    partition: str = "aws"

    def __post_init__(self) -> None:
        if self.queue_in not in ("storage", "compute"):
            raise ValueError(f"queue_in must be 'storage' or 'compute', not {self.queue_in!r}")

    @property
    def queue_account(self) -> str:
        return self.account_b if self.queue_in == "storage" else self.account_a

    @property
    def queue_arn(self) -> str:
        return queue_arn(self.queue_account, self.queue_name, self.region, self.partition)

    def role(self, account: str, name: str) -> str:
        return role_arn(account, name, self.partition)


def render_all(spec: DeploySpec) -> dict[str, Policy]:
    """Every document of a deployment, keyed by where it goes (what ``thumbx policies`` prints)."""
    thumbx_role = spec.role(spec.account_b, spec.role_name)
    task_role = spec.role(spec.account_a, spec.task_role_name)
    lambda_role = spec.role(spec.account_a, spec.lambda_role_name)
    admin_role = spec.role(spec.account_b, spec.admin_role_name)
    in_storage = spec.queue_in == "storage"
    scope = StorageScope(
        bucket=spec.bucket,
        input_prefix=spec.input_prefix,
        output_prefix=spec.output_prefix,
        queue_arn=spec.queue_arn if in_storage else None,
        kms_key_arn=spec.kms_key_arn,
        partition=spec.partition,
    )
    documents: dict[str, Policy] = {
        "storage/ThumbXRole/trust": trust_policy([task_role, lambda_role], spec.external_id),
        "storage/ThumbXRole/permissions": role_permission_policy(scope),
        "storage/bucket-policy": bucket_policy(
            spec.bucket, [thumbx_role, admin_role], partition=spec.partition
        ),
        "compute/task-role/permissions": compute_identity_policy(
            thumbx_role, queue_arn=None if in_storage else spec.queue_arn
        ),
        "compute/lambda-role/permissions": compute_identity_policy(thumbx_role, queue_arn=spec.queue_arn),
    }
    queue_doc = queue_policy(
        spec.queue_arn,
        spec.bucket,
        spec.account_b,
        consumer_arns=[lambda_role] if in_storage else (),
        partition=spec.partition,
    )
    documents[f"{spec.queue_in}/queue-policy"] = queue_doc
    if spec.kms_key_arn:
        documents["storage/kms-key-policy"] = kms_key_policy(
            admin_role, [thumbx_role], region=spec.region, partition=spec.partition
        )
    return documents


IDENTITY_DOCUMENTS = (
    "storage/ThumbXRole/permissions",
    "compute/task-role/permissions",
    "compute/lambda-role/permissions",
)


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
