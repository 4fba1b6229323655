"""``thumbx worker`` / ``python -m worker``: the long-running service, configured from THUMBX_* variables."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from worker import service
from worker.config import load_settings
from worker.malloc import cap_malloc_arenas
from worker.observability import configure_logging


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("worker", help="consume S3 events from SQS and write thumbnails")
    parser.set_defaults(func=run)


def run(_args: argparse.Namespace) -> int:
    cap_malloc_arenas()  # before any thread exists: RSS creep measured by `make bench` (worker/malloc.py)
    settings = load_settings()  # ConfigError -> one line naming the variable, exit 2 (worker.cli)
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(service.run(settings, handle_signals=True))
    return 0
