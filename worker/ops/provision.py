"""Provision the two-account setup in an emulator (moto or LocalStack) from the shipped IAM documents.

Account A (compute) gets the worker's identity, allowed only ``sts:AssumeRole`` on ThumbXRole (an IAM user
stands in for the ECS task role, since emulators cannot run a task). Account B (storage) gets the bucket,
the queue and its DLQ, the ``ObjectCreated`` notification under the input prefix only, ThumbXRole, and an
administrator user for uploads and inspection. Every policy comes from :mod:`worker.ops.policies`.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any, Literal

import boto3

from worker.demo.emulator import ClientFactory
from worker.ops import policies

ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"
_ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class Names:
    bucket: str = "thumbx-demo-images"
    queue: str = "thumbx-jobs"
    dlq: str = "thumbx-jobs-dlq"
    input_prefix: str = "input/"
    output_prefix: str = "thumbnails/"
    role_name: str = policies.ROLE_NAME
    worker_principal: str = "thumbx-worker"
    admin: str = "thumbx-admin"
    external_id: str | None = "thumbx-demo-external-id"
    visibility_timeout: int = 60
    max_receive_count: int = 5
    queue_in: Literal["a", "b"] = (
        "b"  # moto delivers S3 notifications only to a queue in the bucket's account
    )


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str


@dataclass(frozen=True)
class Deployment:
    endpoint: str
    region: str
    account_a: str
    account_b: str
    bucket: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    role_arn: str
    external_id: str | None
    worker_keys: Keys
    admin_keys: Keys
    input_prefix: str = "input/"
    output_prefix: str = "thumbnails/"
    queue_credentials: Literal["storage", "compute"] = "storage"  # where the queue lives

    def worker_env(self) -> dict[str, str]:
        """The environment `thumbx worker` needs to run as account A's worker against this deployment."""
        env = {
            "THUMBX_QUEUE_URL": self.queue_url,
            "THUMBX_DLQ_URL": self.dlq_url,
            "THUMBX_BUCKET": self.bucket,
            "THUMBX_REGION": self.region,
            "THUMBX_ENDPOINT_URL": self.endpoint,
            "THUMBX_ROLE_ARN": self.role_arn,
            "THUMBX_INPUT_PREFIX": self.input_prefix,
            "THUMBX_OUTPUT_PREFIX": self.output_prefix,
            "THUMBX_QUEUE_CREDENTIALS": self.queue_credentials,
            "AWS_ACCESS_KEY_ID": self.worker_keys.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.worker_keys.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
        }
        if self.external_id:
            env["THUMBX_EXTERNAL_ID"] = self.external_id
        return env

    def env_file_text(self) -> str:
        """:meth:`worker_env` as ``NAME=value`` lines (shell-quoted where needed): ``set -a; . FILE`` in a
        shell, or an ``env_file:`` for Compose."""
        return "".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(self.worker_env().items()))


def provision(
    clients: ClientFactory,
    names: Names | None = None,
    *,
    endpoint: str,
    region: str = "us-east-1",
    account_a: str = ACCOUNT_A,
    account_b: str = ACCOUNT_B,
) -> Deployment:
    names = names or Names()
    target_role = policies.role_arn(account_b, names.role_name)
    queue_account = account_a if names.queue_in == "a" else account_b
    iam_a, iam_b = clients("iam", account_a), clients("iam", account_b)
    s3_b, sqs_q = clients("s3", account_b), clients("sqs", queue_account)

    # The queue and its DLQ, in B (read with the role) or in A (read with A's own credentials).
    dlq_url = sqs_q.create_queue(QueueName=names.dlq, Attributes={"MessageRetentionPeriod": "1209600"})[
        "QueueUrl"
    ]
    dlq_arn = _queue_arn(sqs_q, dlq_url)
    queue_url = sqs_q.create_queue(
        QueueName=names.queue,
        Attributes={
            "VisibilityTimeout": str(names.visibility_timeout),
            "ReceiveMessageWaitTimeSeconds": "20",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(names.max_receive_count)}
            ),
        },
    )["QueueUrl"]
    queue_arn = _queue_arn(sqs_q, queue_url)
    queue_in_a = queue_account == account_a

    # Account A: the compute identity, allowed to assume ThumbXRole (and read the queue if it lives in A).
    worker_arn = iam_a.create_user(UserName=names.worker_principal)["User"]["Arn"]
    identity_policy = policies.compute_identity_policy(
        target_role, queue_arn=queue_arn if queue_in_a else None, dlq_arn=dlq_arn if queue_in_a else None
    )
    iam_a.put_user_policy(
        UserName=names.worker_principal,
        PolicyName="thumbx-assume-storage-role",
        PolicyDocument=json.dumps(identity_policy),
    )
    worker_keys = _access_key(iam_a, names.worker_principal)

    # Account B: an administrator, the bucket and its notification, ThumbXRole.
    iam_b.create_user(UserName=names.admin)
    iam_b.put_user_policy(
        UserName=names.admin, PolicyName="emulator-admin", PolicyDocument=json.dumps(_ADMIN_POLICY)
    )
    admin_keys = _access_key(iam_b, names.admin)
    _create_bucket(s3_b, names.bucket, region)
    s3_b.put_bucket_notification_configuration(
        Bucket=names.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "thumbx-input-created",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": names.input_prefix}]}},
                }
            ]
        },
    )
    iam_b.create_role(
        RoleName=names.role_name,
        AssumeRolePolicyDocument=json.dumps(policies.trust_policy([worker_arn], names.external_id)),
        MaxSessionDuration=3600,
    )
    scope = policies.StorageScope(
        bucket=names.bucket,
        input_prefix=names.input_prefix,
        output_prefix=names.output_prefix,
        queue_arn=None if queue_in_a else queue_arn,
        dlq_arn=None if queue_in_a else dlq_arn,
        account_id=account_b,
    )
    iam_b.put_role_policy(
        RoleName=names.role_name,
        PolicyName="thumbx-least-privilege",
        PolicyDocument=json.dumps(policies.role_permission_policy(scope)),
    )
    return Deployment(
        endpoint=endpoint,
        region=region,
        account_a=account_a,
        account_b=account_b,
        bucket=names.bucket,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        role_arn=target_role,
        external_id=names.external_id,
        worker_keys=worker_keys,
        admin_keys=admin_keys,
        input_prefix=names.input_prefix,
        output_prefix=names.output_prefix,
        queue_credentials="compute" if queue_in_a else "storage",
    )


def client_for(deployment: Deployment, service: str, keys: Keys) -> Any:
    """A boto3 client on the deployment's endpoint with the given identity's keys."""
    return boto3.client(
        service,
        endpoint_url=deployment.endpoint,
        region_name=deployment.region,
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
    )


def admin_client(deployment: Deployment, service: str) -> Any:
    """Account B's administrator (uploads, inspection, cleanup)."""
    return client_for(deployment, service, deployment.admin_keys)


def _access_key(iam: Any, user: str) -> Keys:
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _create_bucket(s3: Any, bucket: str, region: str) -> None:
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
