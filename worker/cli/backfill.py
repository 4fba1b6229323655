"""``thumbx backfill``: enqueue the existing images whose thumbnails are missing or stale.

Configured from the same ``THUMBX_*`` variables as the worker (bucket, queue, prefixes, presets, endpoint),
but it runs with the caller's own AWS credentials (the usual chain: environment, profile, instance role);
``THUMBX_ROLE_ARN`` is not used. ``--print-policy`` shows the permissions those credentials need.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from typing import Any

import aioboto3
import structlog

from worker.aws.s3 import S3Store
from worker.core.config import Settings, load_settings
from worker.core.environ import with_flag
from worker.core.errors import ConfigError, ThumbxError
from worker.core.extras import require
from worker.observability.telemetry import configure_logging
from worker.ops.backfill import Backfill, BackfillPlan, Counts, parse_since
from worker.ops.backfill_policy import backfill_operator_policy
from worker.ops.policies import StorageScope
from worker.runtime.service import client_config

log = structlog.get_logger(__name__)
_QUEUE_URL = re.compile(r"^https?://sqs\.([a-z0-9-]+)\.[^/]+/(\d{12})/([\w-]+(?:\.fifo)?)$")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="enqueue existing images that have no up-to-date thumbnails",
        description=__doc__,
    )
    parser.add_argument("--prefix", help="only keys under this prefix (default: THUMBX_INPUT_PREFIX)")
    parser.add_argument("--since", type=_since, help="only objects modified at or after this ISO date/time")
    parser.add_argument("--dry-run", action="store_true", help="list what would be enqueued; send nothing")
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second at most")
    parser.add_argument(
        "--max-backlog",
        type=int,
        default=1000,
        help="pause while the queue holds this many visible messages (0: never pause)",
    )
    parser.add_argument("--start-after", help="resume a scan after this key (printed as last_key)")
    parser.add_argument("--bucket", help="the bucket (default: THUMBX_BUCKET)")
    parser.add_argument("--queue-url", help="the queue to enqueue on (default: THUMBX_QUEUE_URL)")
    parser.add_argument(
        "--progress", choices=("auto", "bar", "log"), default="auto", help="bar on a terminal, log lines else"
    )
    parser.add_argument(
        "--print-policy",
        action="store_true",
        help="print the IAM policy the backfill operator needs and exit",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.print_policy:
        print(json.dumps(operator_policy(settings), indent=2))
        return 0
    if args.rate <= 0:
        raise ConfigError("--rate: must be above 0")
    configure_logging(settings.log_format, settings.log_level)
    plan = BackfillPlan(
        bucket=settings.bucket,
        queue_url=settings.queue_url,
        layout=settings.layout,
        presets=settings.presets,
        manifest=settings.manifest,
        region=settings.region,
        prefix=args.prefix,
        since=args.since,
        start_after=args.start_after,
        dry_run=args.dry_run,
        rate=args.rate,
        max_backlog=max(0, args.max_backlog),
    )
    plan.scan_prefix()  # ConfigError before any request
    use_bar = args.progress == "bar" or (args.progress == "auto" and sys.stderr.isatty())
    try:
        counts = asyncio.run(
            run_backfill(settings, plan, aioboto3.Session(region_name=settings.region), use_bar)
        )
    except ThumbxError as exc:
        if isinstance(exc, ConfigError):
            raise
        print(f"thumbx backfill: {exc}", file=sys.stderr)
        return 1
    if plan.dry_run:
        for key in counts.would_enqueue:
            print(key)
    return 0 if counts.failed == 0 else 1


async def run_backfill(
    settings: Settings, plan: BackfillPlan, session: aioboto3.Session, use_bar: bool = False
) -> Counts:
    """Run one backfill with ``session``'s credentials (the caller's own, never the role)."""
    client_args: dict[str, Any] = {
        "region_name": settings.region,
        "endpoint_url": settings.endpoint_url,
        "config": client_config(max(10, plan.check_concurrency * 2)),
    }
    display = _BarDisplay() if use_bar else _LogDisplay()
    try:
        async with session.client("s3", **client_args) as s3, session.client("sqs", **client_args) as sqs:
            return await Backfill(s3, S3Store(s3), sqs, plan, on_progress=display.update).run()
    finally:
        display.close()


def operator_policy(settings: Settings) -> dict[str, Any]:
    scope = StorageScope(
        bucket=settings.bucket,
        input_prefix=settings.layout.input_prefix,
        output_prefix=settings.layout.output_prefix,
    )
    return backfill_operator_policy(scope, queue_arn_from_url(settings.queue_url))


def queue_arn_from_url(url: str) -> str:
    """``https://sqs.<region>.amazonaws.com/<account>/<name>`` -> its ARN (emulator URLs: best effort)."""
    match = _QUEUE_URL.match(url)
    if match:
        region, account, name = match.groups()
        return f"arn:aws:sqs:{region}:{account}:{name}"
    account, name = url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:*:{account}:{name}"


def _settings(args: argparse.Namespace) -> Settings:
    env = dict(os.environ)
    if args.bucket:
        env["THUMBX_BUCKET"] = args.bucket
    if args.queue_url:
        env["THUMBX_QUEUE_URL"] = args.queue_url
    try:
        return load_settings(env)
    except ConfigError as exc:
        raise ConfigError(with_flag(str(exc), FLAGS)) from None


FLAGS = {"THUMBX_BUCKET": "--bucket", "THUMBX_QUEUE_URL": "--queue-url"}


def _since(text: str) -> Any:
    try:
        return parse_since(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _BarDisplay:
    """A tqdm bar on the terminal: objects scanned, with enqueued / already-done / other as postfix."""

    def __init__(self) -> None:
        tqdm = require("tqdm", "thumbx backfill").tqdm  # the ops extra
        self._bar = tqdm(desc="scanned", unit="obj", file=sys.stderr, dynamic_ncols=True)

    def update(self, counts: Counts) -> None:
        self._bar.update(counts.scanned - self._bar.n)
        self._bar.set_postfix(
            enqueued=counts.enqueued, done=counts.done, other=counts.skipped_other, failed=counts.failed
        )

    def close(self) -> None:
        self._bar.close()


class _LogDisplay:
    """Plain log lines (at most one every 5 s) when stderr is not a terminal."""

    def __init__(self, every: float = 5.0) -> None:
        self._every = every
        self._last = time.monotonic()

    def update(self, counts: Counts) -> None:
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            log.info("backfill_progress", **counts.as_dict())

    def close(self) -> None:
        return None
