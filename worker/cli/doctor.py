"""``thumbx doctor``: preflight a live environment with the worker's own settings and credentials."""

from __future__ import annotations

import argparse
from typing import Any

import boto3

from worker.core.config import load_settings
from worker.ops.doctor import exit_code, render_table
from worker.ops.doctor_probe import PROBE_DIR, run_doctor


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check the deployment: role, prefixes, refusals, bucket and queue settings",
        description=(
            "Runs with the worker's THUMBX_* settings and credentials: assumes ThumbXRole, reads a probe "
            "under the input prefix, writes and reads one under the output prefix, confirms that delete, "
            "list and writes elsewhere are refused, and checks Block Public Access, object ownership, the "
            "TLS-deny bucket policy, the notification filter and the queue's DLQ and visibility timeout. "
            f"Probes live under <prefix>{PROBE_DIR}. Exits 1 when a check fails."
        ),
    )
    parser.add_argument("--profile", help="AWS profile of the worker's identity (default: the usual chain)")
    parser.add_argument(
        "--inspect-profile",
        help="AWS profile of an account-B administrator: places the input probe, reads bucket "
        "configuration, removes the probes (without it those lines are not checkable)",
    )
    parser.add_argument(
        "--lambda-timeout",
        type=int,
        help="the Lambda function's timeout: the queue's visibility must be 6x it",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    worker = boto3.Session(profile_name=args.profile, region_name=settings.region)
    inspector = (
        boto3.Session(profile_name=args.inspect_profile, region_name=settings.region)
        if args.inspect_profile
        else None
    )
    checks = run_doctor(settings, worker, inspector, lambda_timeout=args.lambda_timeout)
    print(render_table(checks))
    return exit_code(checks)
