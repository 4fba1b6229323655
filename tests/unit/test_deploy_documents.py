"""One render path: the documents deploy/*.yaml carry, evaluated for every placement / KMS / external ID /
optional-role combination, are exactly what ``render_all`` (and so ``thumbx policies``) prints."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.cfn_eval import Stack, load
from tools.deploy_render import DEPLOY_DIR, generated_blocks
from worker.ops.deploy_spec import DeploySpec, render_all

A, B, REGION = "111111111111", "222222222222", "eu-west-1"
STORAGE_STACK = "thumbx-storage-prod"

# Where each generated block lives: template, resource, property path.
LOCATIONS: dict[str, tuple[str, str, tuple[Any, ...]]] = {
    "storage/ThumbXRole/trust": ("storage", "ThumbXRole", ("AssumeRolePolicyDocument",)),
    "storage/ThumbXRole/permissions": ("storage", "ThumbXRolePolicy", ("PolicyDocument",)),
    "storage/bucket-policy": ("storage", "BucketPolicy", ("PolicyDocument",)),
    "storage/queue-policy": ("storage", "QueuePolicy", ("PolicyDocument",)),
    "storage/dlq-policy": ("storage", "DeadLetterQueuePolicy", ("PolicyDocument",)),
    "storage/kms-key-policy": ("storage", "BucketKey", ("KeyPolicy",)),
    "storage/trail-bucket-policy": ("storage", "TrailBucketPolicy", ("PolicyDocument",)),
    "compute/task-role/trust": ("compute", "TaskRole", ("AssumeRolePolicyDocument",)),
    "compute/task-role/permissions": ("compute", "TaskRole", ("Policies", 0, "PolicyDocument")),
    "compute/execution-role/trust": ("compute", "ExecutionRole", ("AssumeRolePolicyDocument",)),
    "compute/lambda-role/trust": ("compute", "LambdaRole", ("AssumeRolePolicyDocument",)),
    "compute/lambda-role/permissions": ("compute", "LambdaRole", ("Policies", 0, "PolicyDocument")),
    "compute/queue-policy": ("compute", "QueuePolicy", ("PolicyDocument",)),
    "compute/dlq-policy": ("compute", "DeadLetterQueuePolicy", ("PolicyDocument",)),
}
COMBINATIONS = list(itertools.product(("compute", "storage"), (False, True), (False, True), (False, True)))


def _canonical(node: Any) -> Any:
    """Order-insensitive where IAM is: lists of strings compare as sets."""
    if isinstance(node, dict):
        return {key: _canonical(value) for key, value in node.items()}
    if isinstance(node, list):
        items = [_canonical(item) for item in node]
        return sorted(items) if all(isinstance(i, str) for i in items) else items
    return node


def _deploy(placement: str, kms: bool, external_id: bool, roles: bool) -> tuple[DeploySpec, dict[str, Stack]]:
    optional = {"UploaderRoleName": "Uploads", "BackfillRoleName": "Backfill", "BreakGlassRoleName": "Glass"}
    common = {
        "BucketName": "photos-prod",
        "QueuePlacement": placement,
        "QueueName": "thumbs",
        "InputPrefix": "originals/",
        "OutputPrefix": "thumbs/",
        "ExternalId": "ext-42" if external_id else "",
    }
    storage = Stack(
        load(DEPLOY_DIR / "storage-account.yaml"),
        {
            **common,
            "ComputeAccountId": A,
            "AdminRoleName": "Ops",
            "KmsEncryption": str(kms).lower(),
            **(optional if roles else {}),
        },
        B,
        REGION,
        STORAGE_STACK,
    )
    compute = Stack(
        load(DEPLOY_DIR / "compute-account.yaml"),
        {
            **common,
            "StorageAccountId": B,
            "WorkerImageUri": "w",
            "LambdaImageUri": "l",
            "VpcId": "vpc-1",
            "SubnetIds": "subnet-1",
        },
        A,
        REGION,
        "thumbx-compute",
    )
    spec = DeploySpec(
        account_a=A,
        account_b=B,
        bucket="photos-prod",
        admin_role_name="Ops",
        region=REGION,
        external_id="ext-42" if external_id else None,
        queue_in=placement,
        queue_name="thumbs",
        input_prefix="originals/",
        output_prefix="thumbs/",
        kms_key_arn=storage.physical("BucketKey", "Arn") if kms else None,
        uploader_role_name="Uploads" if roles else None,
        backfill_role_name="Backfill" if roles else None,
        break_glass_role_name="Glass" if roles else None,
        storage_stack=STORAGE_STACK,
    )
    return spec, {"storage": storage, "compute": compute}


def test_every_generated_block_has_a_known_location() -> None:
    blocks = {
        name
        for template in ("storage-account.yaml", "compute-account.yaml")
        for name in generated_blocks((DEPLOY_DIR / template).read_text(encoding="utf-8"))
    }
    assert blocks == set(LOCATIONS)
    printed = set().union(*(render_all(_deploy(*combo)[0]) for combo in COMBINATIONS))
    assert printed == set(LOCATIONS)


@pytest.mark.parametrize(
    ("placement", "kms", "external_id", "roles"),
    COMBINATIONS,
    ids=[
        f"queue-in-{p}{'-kms' if k else ''}{'-extid' if e else ''}{'-roles' if r else ''}"
        for p, k, e, r in COMBINATIONS
    ],
)
def test_templates_carry_exactly_what_thumbx_policies_prints(
    placement: str, kms: bool, external_id: bool, roles: bool
) -> None:
    spec, stacks = _deploy(placement, kms, external_id, roles)
    printed = render_all(spec)
    carried = {}
    for name, (template, resource, path) in LOCATIONS.items():
        stack = stacks[template]
        if resource not in stack.active():
            continue
        node: Any = stack.properties(resource)[0]
        for step in path:
            node = node[step]
        carried[name] = node
    assert set(carried) == set(printed)
    for name, document in printed.items():
        assert _canonical(carried[name]) == _canonical(document), name
