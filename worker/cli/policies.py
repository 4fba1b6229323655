"""``thumbx policies``: every IAM document the deploy templates carry, as JSON, for review or pasting.

The documents come from :func:`worker.ops.deploy_spec.render_all`, the function the templates' generated
blocks are rendered from, so they are what a deployment with the same names gets. Names a wrong guess
would make dangerous have no default (the bucket, the admin role the bucket policy admits, the region);
every other name it assumes is printed to stderr with the flag that changes it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from worker.core.config import check_layout
from worker.core.errors import ConfigError
from worker.core.keys import KeyLayout
from worker.ops.deploy_spec import DEFAULT_NAMES, QUEUE_PLACEMENTS, DeploySpec, render_all

_ACCOUNT = re.compile(r"^\d{12}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,55}[a-z0-9]$")  # the templates' pattern (<bucket>-trail fits)
_ROLE = re.compile(r"^[\w+=,.@-]{1,64}$")
_QUEUE = re.compile(r"^[A-Za-z0-9_-]{1,76}$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_KMS_KEY = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[\w-]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
ASSUMED = {  # flag -> DeploySpec field, for the names taken from the templates' defaults
    "--queue-name": "queue_name",
    "--role-name": "role_name",
    "--task-role-name": "task_role_name",
    "--lambda-role-name": "lambda_role_name",
    "--storage-stack": "storage_stack",
}


def _checked(pattern: re.Pattern[str], what: str, example: str) -> Any:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise argparse.ArgumentTypeError(f"{value!r} is not {what} (e.g. {example})")
        return value

    return check


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "policies",
        help="print every IAM document the deploy templates carry, as JSON",
        description=(
            "The trust, permission, bucket, queue, DLQ, key, trail-bucket and service-role documents that "
            "deploy/*.yaml carry for these names (rendered by the same code). Names without a default must "
            "be given; assumed names are printed to stderr."
        ),
    )
    role = _checked(_ROLE, "an IAM role name", "ThumbXAdminRole")
    add = parser.add_argument
    add(
        "--account-a",
        type=_checked(_ACCOUNT, "a 12-digit account ID", "111111111111"),
        required=True,
        help="compute account (ECS, Lambda)",
    )
    add(
        "--account-b",
        type=_checked(_ACCOUNT, "a 12-digit account ID", "222222222222"),
        required=True,
        help="storage account (bucket, ThumbXRole)",
    )
    add(
        "--bucket",
        type=_checked(_BUCKET, "a bucket name of at most 57 characters", "photos-prod"),
        required=True,
        help="the bucket in B (its CloudTrail bucket is <bucket>-trail)",
    )
    add(
        "--admin-role-name",
        type=role,
        required=True,
        help="existing role in B managing the bucket and the key (the bucket policy denies others)",
    )
    add(
        "--region",
        type=_checked(_REGION, "an AWS region", "eu-west-1"),
        help="region of the queue and the key (default: AWS_REGION, AWS_DEFAULT_REGION)",
    )
    add(
        "--queue-in",
        choices=QUEUE_PLACEMENTS,
        default="compute",
        help="queue in compute (account A, the templates' default) or storage (B)",
    )
    add(
        "--external-id",
        type=_checked(_EXTERNAL_ID, "an external ID", "ext-4f1c"),
        help="sts:ExternalId ThumbXRole's trust requires (default: none)",
    )
    add("--input-prefix", default="input/", help="uploads (default: %(default)s)")
    add("--output-prefix", default="thumbnails/", help="thumbnails (default: %(default)s)")
    add(
        "--queue-name",
        type=_checked(_QUEUE, "a queue name", DEFAULT_NAMES["queue_name"]),
        help=f"the queue's name, its DLQ <name>-dlq (default: {DEFAULT_NAMES['queue_name']})",
    )
    add("--role-name", type=role, help=f"ThumbXRole's name (default: {DEFAULT_NAMES['role_name']})")
    add("--task-role-name", type=role, help=f"A's ECS task role (default: {DEFAULT_NAMES['task_role_name']})")
    add(
        "--lambda-role-name",
        type=role,
        help=f"A's Lambda role (default: {DEFAULT_NAMES['lambda_role_name']})",
    )
    add(
        "--storage-stack", help=f"B's stack name, names the trail (default: {DEFAULT_NAMES['storage_stack']})"
    )
    add("--uploader-role-name", type=role, help="optional role in B that uploads originals")
    add("--backfill-role-name", type=role, help="optional role in B that runs `thumbx backfill`")
    add("--break-glass-role-name", type=role, help="optional emergency role in B")
    add(
        "--kms-key-arn",
        type=_checked(_KMS_KEY, "a KMS key ARN", "arn:aws:kms:eu-west-1:222222222222:key/…"),
        help="the bucket's customer-managed key, if any (adds the key policy)",
    )
    add(
        "--partition",
        default="aws",
        choices=["aws", "aws-cn", "aws-us-gov"],
        help="the AWS partition of every ARN",
    )
    add("--out-dir", type=Path, help="write one JSON file per document there (<account>/<where>.json)")
    parser.set_defaults(func=run)


def spec_from_args(args: argparse.Namespace, env: dict[str, str] | None = None) -> DeploySpec:
    env = dict(os.environ) if env is None else env
    try:
        check_layout(KeyLayout(input_prefix=args.input_prefix, output_prefix=args.output_prefix))
    except ConfigError as exc:
        raise ConfigError(f"--input-prefix / --output-prefix: {str(exc).split(': ', 1)[-1]}") from None
    region = args.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region:
        raise ConfigError("--region: required (or set AWS_REGION), e.g. --region eu-west-1")
    assumed = [(flag, field) for flag, field in ASSUMED.items() if getattr(args, field) is None]
    if not args.region:
        print(f"thumbx policies: region {region} (from the environment; --region to change)", file=sys.stderr)
    for flag, field in assumed:
        print(
            f"thumbx policies: assuming {field.replace('_', ' ')} {DEFAULT_NAMES[field]!r} "
            f"(the deploy default; {flag} to change)",
            file=sys.stderr,
        )
    names = {field: getattr(args, field) or DEFAULT_NAMES[field] for field in ASSUMED.values()}
    return DeploySpec(
        account_a=args.account_a,
        account_b=args.account_b,
        bucket=args.bucket,
        admin_role_name=args.admin_role_name,
        region=region,
        external_id=args.external_id,
        queue_in=args.queue_in,
        input_prefix=args.input_prefix,
        output_prefix=args.output_prefix,
        uploader_role_name=args.uploader_role_name,
        backfill_role_name=args.backfill_role_name,
        break_glass_role_name=args.break_glass_role_name,
        kms_key_arn=args.kms_key_arn,
        partition=args.partition,
        **names,
    )


def run(args: argparse.Namespace) -> int:
    documents = render_all(spec_from_args(args))
    if args.out_dir is None:
        print(json.dumps(documents, indent=2))
        return 0
    for name, document in documents.items():
        path = args.out_dir / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(path)
    return 0
