"""One deployment's IAM documents (pure): the single composition of :mod:`worker.ops.policies` and
:mod:`worker.ops.perimeter`.

``render_all`` is what ``thumbx policies`` prints and what ``deploy/*.yaml`` carry:
:mod:`tools.deploy_render` calls it with CloudFormation substitutions (``${BucketName}``) for every
combination of the templates' conditions and folds the results into ``Fn::If``. So the printed documents
and the deployed ones cannot drift apart (``tests/unit/test_deploy_documents.py`` evaluates the templates
for every combination and compares).
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.ops import perimeter, policies
from worker.ops.perimeter import BucketPrincipals
from worker.ops.policies import Policy, StorageScope

QUEUE_PLACEMENTS = ("compute", "storage")  # the templates' QueuePlacement values; compute is the default
DEFAULT_QUEUE_NAME = "thumbx-events"
DEFAULT_STORAGE_STACK = "thumbx-storage"
DEFAULT_NAMES = {  # the templates' parameter defaults, which `thumbx policies` prints when it assumes them
    "role_name": policies.ROLE_NAME,
    "task_role_name": "ThumbXWorkerTaskRole",
    "lambda_role_name": "ThumbXLambdaRole",
    "queue_name": DEFAULT_QUEUE_NAME,
    "storage_stack": DEFAULT_STORAGE_STACK,
}
# The documents an IAM identity carries (what parliament audits); the others are resource policies.
IDENTITY_DOCUMENTS = (
    "storage/ThumbXRole/permissions",
    "compute/task-role/permissions",
    "compute/lambda-role/permissions",
)


@dataclass(frozen=True, kw_only=True)
class DeploySpec:
    """Everything the documents of one deployment depend on. No default for a name whose wrong guess
    locks someone out or points at another bucket (bucket, admin role, region)."""

    account_a: str
    account_b: str
    bucket: str
    admin_role_name: str
    region: str
    external_id: str | None = None
    queue_in: str = "compute"  # "compute" (account A, the templates' default) or "storage" (account B)
    queue_name: str = DEFAULT_QUEUE_NAME
    role_name: str = policies.ROLE_NAME
    task_role_name: str = "ThumbXWorkerTaskRole"
    lambda_role_name: str = "ThumbXLambdaRole"
    uploader_role_name: str | None = None
    backfill_role_name: str | None = None
    break_glass_role_name: str | None = None
    input_prefix: str = "input/"
    output_prefix: str = "thumbnails/"
    kms_key_arn: str | None = None
    storage_stack: str = DEFAULT_STORAGE_STACK  # names the CloudTrail trail (<stack>-data)
    partition: str = "aws"

    def __post_init__(self) -> None:
        if self.queue_in not in QUEUE_PLACEMENTS:
            raise ValueError(f"queue_in must be 'storage' or 'compute', not {self.queue_in!r}")

    @property
    def queue_account(self) -> str:
        return self.account_b if self.queue_in == "storage" else self.account_a

    @property
    def queue_arn(self) -> str:
        return policies.queue_arn(self.queue_account, self.queue_name, self.region, self.partition)

    @property
    def dlq_arn(self) -> str:
        return policies.queue_arn(self.queue_account, f"{self.queue_name}-dlq", self.region, self.partition)

    @property
    def trail_bucket(self) -> str:
        return f"{self.bucket}-trail"

    @property
    def trail_arn(self) -> str:
        region, account = self.region, self.account_b
        return f"arn:{self.partition}:cloudtrail:{region}:{account}:trail/{self.storage_stack}-data"

    def role(self, account: str, name: str) -> str:
        return policies.role_arn(account, name, self.partition)

    def storage_role(self, name: str | None) -> str | None:
        return self.role(self.account_b, name) if name else None


def render_all(spec: DeploySpec) -> dict[str, Policy]:
    """Every IAM document the two templates carry, keyed ``<account>/<where>``."""
    thumbx_role = spec.role(spec.account_b, spec.role_name)
    task_role = spec.role(spec.account_a, spec.task_role_name)
    lambda_role = spec.role(spec.account_a, spec.lambda_role_name)
    admins = [spec.role(spec.account_b, spec.admin_role_name)]
    if spec.break_glass_role_name:
        admins.append(spec.role(spec.account_b, spec.break_glass_role_name))
    uploader = spec.storage_role(spec.uploader_role_name)
    in_storage = spec.queue_in == "storage"
    scope = StorageScope(
        bucket=spec.bucket,
        input_prefix=spec.input_prefix,
        output_prefix=spec.output_prefix,
        queue_arn=spec.queue_arn if in_storage else None,
        dlq_arn=spec.dlq_arn if in_storage else None,
        kms_key_arn=spec.kms_key_arn,
        partition=spec.partition,
        account_id=spec.account_b,
        region=spec.region,
    )
    principals = BucketPrincipals(
        thumbx_role=thumbx_role,
        admin_roles=admins,
        uploader=uploader,
        backfill=spec.storage_role(spec.backfill_role_name),
        analyzer=perimeter.analyzer_role_arn(spec.account_b, spec.partition),
    )
    own_queue = None if in_storage else spec.queue_arn
    own_dlq = None if in_storage else spec.dlq_arn
    documents: dict[str, Policy] = {
        "storage/ThumbXRole/trust": policies.trust_policy([task_role, lambda_role], spec.external_id),
        "storage/ThumbXRole/permissions": policies.role_permission_policy(scope),
        "storage/bucket-policy": perimeter.bucket_policy(
            spec.bucket,
            principals,
            input_prefix=spec.input_prefix,
            output_prefix=spec.output_prefix,
            partition=spec.partition,
        ),
        "storage/trail-bucket-policy": perimeter.trail_bucket_policy(
            spec.trail_bucket, spec.trail_arn, spec.account_b, partition=spec.partition
        ),
        "compute/task-role/trust": policies.service_trust_policy("ecs-tasks.amazonaws.com", spec.account_a),
        "compute/task-role/permissions": policies.compute_identity_policy(
            thumbx_role, queue_arn=own_queue, dlq_arn=own_dlq
        ),
        "compute/execution-role/trust": policies.service_trust_policy(
            "ecs-tasks.amazonaws.com", spec.account_a
        ),
        "compute/lambda-role/trust": policies.service_trust_policy("lambda.amazonaws.com", spec.account_a),
        # The event source mapping polls with the function's role wherever the queue is.
        "compute/lambda-role/permissions": policies.compute_identity_policy(
            thumbx_role, queue_arn=spec.queue_arn, dlq_arn=own_dlq
        ),
    }
    documents[f"{spec.queue_in}/queue-policy"] = policies.queue_policy(
        spec.queue_arn,
        spec.bucket,
        spec.account_b,
        consumer_arns=[lambda_role] if in_storage else (),
        partition=spec.partition,
    )
    documents[f"{spec.queue_in}/dlq-policy"] = policies.dead_letter_queue_policy(spec.dlq_arn)
    if spec.kms_key_arn:
        documents["storage/kms-key-policy"] = perimeter.kms_key_policy(
            account_id=spec.account_b,
            admin_role_arns=admins,
            user_role_arns=[thumbx_role, *admins, *([uploader] if uploader else [])],
            bucket=spec.bucket,
            region=spec.region,
            partition=spec.partition,
        )
    return documents
