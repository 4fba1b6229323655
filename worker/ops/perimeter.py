"""Account B's resource policies (pure): the bucket's perimeter, the bucket key, the trail bucket.

The bucket policy grants nothing: same-account roles get their access from their identity policies. It
denies, so that no identity policy in B (or anywhere) can reach around it:

* every request without TLS;
* every S3 action on the bucket and its objects to any principal not named (``aws:PrincipalArn``, which
  for an assumed-role session is the role's ARN);
* each named role beyond its job, whatever its identity policy says. ThumbXRole: read the input and
  output prefixes, write the output prefix. Uploader: put (and abort or list its own multipart uploads)
  under the input prefix. Backfill operator: list the two prefixes, read under the output prefix. IAM
  Access Analyzer's service-linked role: read the bucket's configuration. The admin and break-glass
  roles are not capped.

The key policy cannot lock itself out: the account may administer the key through IAM, but only from the
admin and break-glass roles (by ARN, so a deleted and re-created admin role still gets in); key
administration is separate from key use, and every use goes through S3 in the bucket's region for this
bucket's objects only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from worker.ops.policies import VERSION, Policy, Statement, bucket_arn, refuse_broad

ANALYZER_ROLE_PATH = "aws-service-role/access-analyzer.amazonaws.com/AWSServiceRoleForAccessAnalyzer"
UPLOADER_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
# Key administration without cryptographic use (and without CreateGrant, which would hand use out).
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
KEY_USE_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


@dataclass(frozen=True)
class BucketPrincipals:
    """The only principals the bucket policy lets touch the bucket (role ARNs)."""

    thumbx_role: str
    admin_roles: Sequence[str]  # the admin role and an optional break-glass role: not capped
    uploader: str | None = None
    backfill: str | None = None
    analyzer: str | None = None  # IAM Access Analyzer's service-linked role in B

    def named(self) -> list[str]:
        optional = [arn for arn in (self.uploader, self.backfill, self.analyzer) if arn]
        return sorted([self.thumbx_role, *self.admin_roles, *optional])


def analyzer_role_arn(account_id: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:role/{ANALYZER_ROLE_PATH}"


def _cap(sid: str, principal: str, **element: object) -> Statement:
    """A Deny that applies to one named role only."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        **element,
        "Condition": {"ArnEquals": {"aws:PrincipalArn": principal}},
    }


def bucket_policy(
    bucket: str,
    principals: BucketPrincipals,
    *,
    input_prefix: str = "input/",
    output_prefix: str = "thumbnails/",
    partition: str = "aws",
) -> Policy:
    """B's bucket policy: deny without TLS, deny everyone not named, cap each named role to its job."""
    named = principals.named()
    for arn in named:
        refuse_broad(arn)
    arn = bucket_arn(bucket, partition)
    everything = [arn, f"{arn}/*"]
    inputs, outputs = f"{arn}/{input_prefix}*", f"{arn}/{output_prefix}*"
    statements: list[Statement] = [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": everything,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyUnnamedPrincipals",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": everything,
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": named}},
        },
        _cap(
            "ThumbXRoleOnlyReadsAndWritesObjects",
            principals.thumbx_role,
            NotAction=["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
            Resource=everything,
        ),
        _cap(
            "ThumbXRoleReadsOnlyItsPrefixes",
            principals.thumbx_role,
            Action=["s3:GetObject", "s3:GetObjectVersion"],
            NotResource=[inputs, outputs],
        ),
        _cap(
            "ThumbXRoleWritesOnlyThumbnails",
            principals.thumbx_role,
            Action="s3:PutObject",
            NotResource=outputs,
        ),
    ]
    if principals.uploader:
        statements += [
            _cap(
                "UploaderOnlyUploads",
                principals.uploader,
                NotAction=list(UPLOADER_ACTIONS),
                Resource=everything,
            ),
            _cap(
                "UploaderOnlyUnderInput",
                principals.uploader,
                Action=list(UPLOADER_ACTIONS),
                NotResource=inputs,
            ),
        ]
    if principals.backfill:
        statements += [
            _cap(
                "BackfillOnlyListsAndReadsThumbnails",
                principals.backfill,
                NotAction=["s3:ListBucket", "s3:GetObject"],
                Resource=everything,
            ),
            _cap(
                "BackfillReadsOnlyThumbnails",
                principals.backfill,
                Action="s3:GetObject",
                NotResource=outputs,
            ),
            {
                "Sid": "BackfillListsOnlyItsPrefixes",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:ListBucket",
                "Resource": arn,
                "Condition": {
                    "ArnEquals": {"aws:PrincipalArn": principals.backfill},
                    "StringNotLike": {"s3:prefix": [f"{input_prefix}*", f"{output_prefix}*"]},
                },
            },
        ]
    if principals.analyzer:
        statements.append(
            _cap(
                "AnalyzerOnlyReadsConfiguration",
                principals.analyzer,
                NotAction="s3:GetBucket*",
                Resource=everything,
            )
        )
    return {"Version": VERSION, "Statement": statements}


def kms_key_policy(
    *,
    account_id: str,
    admin_role_arns: Sequence[str],
    user_role_arns: Sequence[str],
    bucket: str,
    region: str,
    partition: str = "aws",
) -> Policy:
    """The bucket key's policy: administered by the admin roles, used only by S3 for this bucket.

    ``admin_role_arns`` (admin, optional break-glass) administer the key directly and, through the
    account statement, by IAM from a re-created role of the same ARN; they never decrypt outside S3.
    ``user_role_arns`` (ThumbXRole, the admin roles, an optional uploader) may Decrypt / GenerateDataKey
    only through S3 in ``region`` with the bucket's encryption context.
    """
    for arn in (*admin_role_arns, *user_role_arns):
        refuse_broad(arn)
    admins = sorted(admin_role_arns)
    source = bucket_arn(bucket, partition)
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AccountAdministersThroughNamedRoles",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": list(KEY_ADMIN_ACTIONS),
                "Resource": "*",
                "Condition": {"ArnEquals": {"aws:PrincipalArn": admins}},
            },
            {
                "Sid": "AdministerKey",
                "Effect": "Allow",
                "Principal": {"AWS": admins},
                "Action": list(KEY_ADMIN_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "UseKeyThroughS3ForTheBucket",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(set(user_role_arns))},
                "Action": list(KEY_USE_ACTIONS),
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [source, f"{source}/*"]},
                },
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
