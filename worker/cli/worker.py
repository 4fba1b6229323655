"""``thumbx worker`` / ``python -m worker``: the long-running service, configured from THUMBX_* variables."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import threading
from dataclasses import replace
from typing import Any

from worker.aws import attribution
from worker.core.config import Settings, load_settings
from worker.core.errors import ConfigError
from worker.core.settings import help_text
from worker.observability.malloc import cap_malloc_arenas
from worker.observability.telemetry import configure_logging
from worker.runtime import service
from worker.runtime.pipeline import Renderer


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="consume S3 events from SQS and write thumbnails",
        description="The long-running service (also: python -m worker). It takes no options: it is "
        "configured\nfrom the environment below (docs/configuration.md); SIGTERM drains it and exits 0.",
        epilog=help_text("worker"),
    )
    parser.set_defaults(func=run)


def run(_args: argparse.Namespace) -> int:
    # before any thread exists: RSS creep measured by `make bench` (worker/observability/malloc.py)
    cap_malloc_arenas()
    settings = load_settings()  # ConfigError -> one line naming the variable, exit 2 (worker.cli.main)
    check_health_port(settings.health_host, settings.health_port)
    configure_logging(settings.log_format, settings.log_level)
    # on ECS: session name and source identity thumbx-worker-<task id> (B's CloudTrail tells tasks apart)
    settings = replace(settings, role=attribution.for_ecs_task(settings.role, os.environ))
    return serve(settings)


def check_health_port(host: str, port: int | None) -> None:
    """Refuse to start when the health port is taken: `thumbx healthcheck` would ask another process."""
    if not port:  # None: no health server; 0: any free port
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds: TIME_WAIT is fine
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"THUMBX_HEALTH_PORT: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "e.g. THUMBX_HEALTH_PORT=8081 (0: any free port, off: no health server)"
            ) from None


def serve(settings: Settings, *, renderer: Renderer | None = None) -> int:
    """Run until SIGTERM/SIGINT; return 0 once acks are flushed and unfinished messages are back."""
    asyncio.run(service.run(settings, handle_signals=True, renderer=renderer))
    if any(t.name.startswith("render") and t.is_alive() for t in threading.enumerate()):
        # A render abandoned at the shutdown deadline still runs in its thread; its message is already
        # visible again. Exiting normally would join that thread past the deadline, so leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
