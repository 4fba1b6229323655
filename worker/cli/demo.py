"""``thumbx demo``: the cross-account path end to end on an embedded moto server."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from worker.demo.tour import quiet_outcome_logs, run_demo
from worker.observability.telemetry import configure_logging


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the whole pipeline on an embedded AWS emulator")
    parser.add_argument("--images", type=Path, help="upload these files instead of the built-in samples")
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="where results go")
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="keep the emulator and worker up: print each upload processed and refresh --out",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="with --keep-running: write the worker environment here (set -a; . PATH; set +a; thumbx worker)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for every outcome")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="the worker's log level (debug also shows its per-message lines; the demo prints outcomes)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    configure_logging("auto", args.log_level)
    if args.log_level != "debug":
        quiet_outcome_logs()
    if args.env_file is not None and not args.keep_running:
        print("thumbx demo: --env-file needs --keep-running (the emulator stops when the demo ends)")
        return 2
    if args.images is not None and not args.images.is_dir():
        print(f"thumbx demo: --images {args.images} is not a directory")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    return asyncio.run(
        run_demo(
            args.images,
            args.out,
            keep_running=args.keep_running,
            timeout=args.timeout,
            env_file=args.env_file,
        )
    )
