"""``thumbx dlq list`` / ``thumbx dlq redrive``: look at the dead-letter queue, and move it back once fixed.

Configured from THUMBX_DLQ_URL and THUMBX_QUEUE_URL (or --dlq-url / --queue-url), THUMBX_REGION and
THUMBX_ENDPOINT_URL, like the worker; it runs with the caller's own AWS credentials (the usual chain), not
THUMBX_ROLE_ARN. --print-policy shows the permissions those credentials need.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aioboto3

from worker.cli.backfill import queue_arn_from_url
from worker.core.environ import Reader, check_queue_host, with_example, with_flag
from worker.core.errors import ConfigError, ThumbxError
from worker.core.settings import BY_NAME
from worker.ops import dlq
from worker.ops.dlq_policy import dlq_operator_policy
from worker.runtime.service import client_config

FLAGS = {"THUMBX_DLQ_URL": "--dlq-url", "THUMBX_QUEUE_URL": "--queue-url"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dlq", help="list the dead-letter queue, or redrive it", description=__doc__
    )
    parser.set_defaults(func=None, usage_of=parser)
    commands = parser.add_subparsers(dest="dlq_command", metavar="COMMAND")

    listing = commands.add_parser(
        "list", help="reason, key, receive count and age of each dead letter (nothing is removed)"
    )
    _common(listing)
    listing.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    listing.add_argument("--limit", type=int, default=1000, help="show at most this many")
    listing.set_defaults(func=run_list)

    again = commands.add_parser(
        "redrive",
        help="move dead letters back to the queue (all, or those of one --reason)",
        description=dlq.__doc__,
    )
    _common(again)
    again.add_argument("--queue-url", help="where they go (default: THUMBX_QUEUE_URL)")
    again.add_argument("--reason", help="only dead letters with this thumbx-reason (e.g. corrupt_image)")
    again.add_argument("--rate", type=float, default=10.0, help="messages per second at most")
    again.add_argument("--limit", type=int, help="move at most this many (default: all)")
    again.set_defaults(func=run_redrive)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dlq-url", help="the dead-letter queue (default: THUMBX_DLQ_URL)")
    parser.add_argument(
        "--print-policy", action="store_true", help="print the IAM policy this command needs and exit"
    )


@dataclass(frozen=True)
class Target:
    dlq_url: str
    queue_url: str | None
    region: str
    endpoint_url: str | None


def target(args: argparse.Namespace, env: Mapping[str, str], *, need_queue: bool) -> Target:
    """The URLs from flags or THUMBX_* variables, validated like the worker's (errors name both)."""
    merged = dict(env)
    for variable, flag in FLAGS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value:
            merged[variable] = value
    reader = Reader(merged)
    try:
        endpoint = reader.optional("THUMBX_ENDPOINT_URL")
        dlq_url = _url(reader, "THUMBX_DLQ_URL", endpoint, required=True)
        queue_url = _url(reader, "THUMBX_QUEUE_URL", endpoint, required=need_queue)
        region = reader.text(
            "THUMBX_REGION", env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        )
    except ConfigError as exc:
        raise ConfigError(with_flag(str(exc), FLAGS)) from None
    return Target(dlq_url or "", queue_url, region, endpoint)


def _url(reader: Reader, variable: str, endpoint: str | None, *, required: bool) -> str | None:
    url = reader.optional(variable, required=False)
    if url is None and required:
        raise with_example(BY_NAME[variable], f"{variable}: required but not set")
    if url is not None:
        check_queue_host(variable, url, endpoint)
    return url


def policy(where: Target, *, redrive: bool) -> dict[str, Any]:
    queue_arn = queue_arn_from_url(where.queue_url) if where.queue_url else "*"
    return dlq_operator_policy(queue_arn_from_url(where.dlq_url), queue_arn, redrive=redrive)


def _client(where: Target) -> Any:
    session = aioboto3.Session(region_name=where.region)
    return session.client(
        "sqs", region_name=where.region, endpoint_url=where.endpoint_url, config=client_config(10)
    )


def run_list(args: argparse.Namespace) -> int:
    where = target(args, os.environ, need_queue=False)
    if args.print_policy:
        print(json.dumps(policy(where, redrive=False), indent=2))
        return 0
    if args.limit < 1:
        raise ConfigError("--limit: must be 1 or more, e.g. --limit 100")

    async def go() -> list[dlq.DeadLetter]:
        async with _client(where) as sqs:
            return await dlq.peek(sqs, where.dlq_url, limit=args.limit)

    try:
        letters = asyncio.run(go())
    except ThumbxError as exc:
        print(f"thumbx dlq list: {exc}", file=sys.stderr)
        return 1
    now = datetime.now(UTC)
    if args.json:
        print(json.dumps([d.as_dict(now) for d in letters], indent=2))
        return 0
    if not letters:
        print(f"no dead letters on {where.dlq_url}")
        return 0
    print(dlq.table(letters, now))
    more = " (--limit reached; there may be more)" if len(letters) >= args.limit else ""
    print(f"{len(letters)} dead letter{'s' if len(letters) != 1 else ''} on {where.dlq_url}{more}")
    return 0


def run_redrive(args: argparse.Namespace) -> int:
    where = target(args, os.environ, need_queue=True)
    if args.print_policy:
        print(json.dumps(policy(where, redrive=True), indent=2))
        return 0
    if args.rate <= 0:
        raise ConfigError("--rate: must be above 0, e.g. --rate 10")
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit: must be 1 or more, e.g. --limit 100")
    queue_url = where.queue_url or ""  # required by target(need_queue=True)

    async def go() -> dlq.RedriveResult:
        async with _client(where) as sqs:
            return await dlq.redrive(
                sqs, where.dlq_url, queue_url, reason=args.reason, rate=args.rate, limit=args.limit
            )

    try:
        result = asyncio.run(go())
    except ThumbxError as exc:
        print(f"thumbx dlq redrive: {exc}", file=sys.stderr)
        return 1
    if result.note:
        print(result.note, file=sys.stderr)
    line = f"moved {result.moved} to {queue_url} ({result.method})"
    if result.kept:
        line += f"; {result.kept} with another reason left on the DLQ"
    if result.failed:
        line += f"; {result.failed} could not be moved (left on the DLQ)"
    if result.task:
        line += f"; move task {result.task.get('Status', '?')}"
    print(line)
    return 0 if result.failed == 0 else 1
