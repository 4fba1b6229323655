"""``thumbx policies``: print every IAM document of a deployment as JSON, for review or pasting."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from worker.policies import DeploySpec, render_all

_ACCOUNT = re.compile(r"^\d{12}$")


def _account(value: str) -> str:
    if not _ACCOUNT.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a 12-digit account ID")
    return value


def register(subparsers: Any) -> None:
    defaults = DeploySpec(account_a="000000000000", account_b="000000000000")
    parser = subparsers.add_parser(
        "policies",
        help="print the trust, permission, bucket and queue policies as JSON",
        description="The same documents deploy/*.yaml carry and the emulator provisioning uses.",
    )
    parser.add_argument("--account-a", type=_account, required=True, help="compute account (ECS, Lambda)")
    parser.add_argument(
        "--account-b", type=_account, required=True, help="storage account (bucket, ThumbXRole)"
    )
    parser.add_argument("--external-id", help="sts:ExternalId ThumbXRole's trust requires")
    parser.add_argument("--bucket", default=defaults.bucket)
    parser.add_argument("--region", default=defaults.region)
    parser.add_argument("--queue-in", choices=["storage", "compute"], default=defaults.queue_in)
    parser.add_argument("--queue-name", default=defaults.queue_name)
    parser.add_argument("--input-prefix", default=defaults.input_prefix)
    parser.add_argument("--output-prefix", default=defaults.output_prefix)
    parser.add_argument("--task-role-name", default=defaults.task_role_name)
    parser.add_argument("--lambda-role-name", default=defaults.lambda_role_name)
    parser.add_argument("--admin-role-name", default=defaults.admin_role_name)
    parser.add_argument("--kms-key-arn", help="the bucket's customer-managed key, if any")
    parser.add_argument("--partition", default=defaults.partition)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    spec = DeploySpec(
        account_a=args.account_a,
        account_b=args.account_b,
        bucket=args.bucket,
        region=args.region,
        external_id=args.external_id,
        queue_in=args.queue_in,
        queue_name=args.queue_name,
        task_role_name=args.task_role_name,
        lambda_role_name=args.lambda_role_name,
        admin_role_name=args.admin_role_name,
        input_prefix=args.input_prefix,
        output_prefix=args.output_prefix,
        kms_key_arn=args.kms_key_arn,
        partition=args.partition,
    )
    print(json.dumps(render_all(spec), indent=2))
    return 0
