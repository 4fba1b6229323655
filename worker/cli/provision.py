"""``thumbx provision``: the two-account setup of ``thumbx demo``, provisioned into a running LocalStack.

The compose file's ``init`` service runs this against its LocalStack, so ``docker compose up`` and
``thumbx demo`` share one provisioning path (:func:`worker.ops.provision.provision`). LocalStack picks the
account from the access key id, so account A's and B's administrators are the 12-digit account ids.
Running it again against an already provisioned emulator changes nothing and exits 0.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.core.errors import ConfigError
from worker.demo.emulator import keyed_client_factory
from worker.ops.provision import ACCOUNT_A, ACCOUNT_B, Deployment, Names, provision


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "provision", help="create the demo's accounts A and B (bucket, queues, ThumbXRole) in LocalStack"
    )
    parser.add_argument("--endpoint", required=True, help="the emulator's URL, e.g. http://127.0.0.1:4566")
    parser.add_argument("--region", default="us-east-1", help="region of every resource")
    parser.add_argument("--account-a", default=ACCOUNT_A, help="compute account (worker identity)")
    parser.add_argument("--account-b", default=ACCOUNT_B, help="storage account (bucket, queue, role)")
    parser.add_argument("--bucket", default=Names.bucket, help="the bucket in B")
    parser.add_argument("--queue", default=Names.queue, help="the queue's name (its DLQ: <queue>-dlq)")
    parser.add_argument("--env-file", type=Path, help="also write the worker's THUMBX_*/AWS_* variables here")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the endpoint")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    endpoint = str(args.endpoint).rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"--endpoint must be an http(s) URL, got {endpoint!r}")
    _wait_for(endpoint, args.wait)
    names = Names(bucket=args.bucket, queue=args.queue, dlq=f"{args.queue}-dlq")
    clients = keyed_client_factory(endpoint, args.region)
    if _already_provisioned(clients("s3", args.account_b), clients("iam", args.account_b), names):
        print(json.dumps({"provisioned": False, "reason": "bucket and role already exist"}))
        return 0
    try:
        deployment = provision(
            clients, names, endpoint=endpoint, region=args.region, account_a=args.account_a,
            account_b=args.account_b,
        )  # fmt: skip
    except (ClientError, BotoCoreError) as exc:
        print(f"thumbx provision: {exc}")
        return 1
    if args.env_file is not None:
        args.env_file.write_text(deployment.env_file_text())
    print(json.dumps(summary(deployment), indent=2))
    return 0


def summary(deployment: Deployment) -> dict[str, Any]:
    return {
        "provisioned": True,
        "bucket": deployment.bucket,
        "queue_url": deployment.queue_url,
        "dlq_url": deployment.dlq_url,
        "role_arn": deployment.role_arn,
        "external_id": deployment.external_id,
        "worker_access_key_id": deployment.worker_keys.access_key_id,
        "upload": f"aws --endpoint-url {deployment.endpoint} --region {deployment.region} s3 cp PHOTO.jpg "
        f"s3://{deployment.bucket}/{deployment.input_prefix}PHOTO.jpg",
    }


def _already_provisioned(s3: Any, iam: Any, names: Names) -> bool:
    try:
        s3.head_bucket(Bucket=names.bucket)
        iam.get_role(RoleName=names.role_name)
    except ClientError:
        return False
    return True


def _wait_for(endpoint: str, timeout: float) -> None:
    """LocalStack answers /_localstack/health once up; any HTTP answer at all will do for other emulators."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=5):  # noqa: S310
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                raise ConfigError(f"--endpoint {endpoint} did not answer within {timeout:.0f}s") from exc
            time.sleep(1)
