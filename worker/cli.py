"""``thumbx``: one entry point, one module per subcommand (``worker/cmd_*.py``)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from worker import __version__
from worker.errors import ConfigError
from worker.settings import unknown_names

COMMANDS = (
    "worker.cmd_worker",
    "worker.cmd_demo",
    "worker.cmd_provision",
    "worker.cmd_policies",
    "worker.cmd_doctor",
    "worker.cmd_healthcheck",
    "worker.cmd_render",
    "worker.cmd_backfill",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thumbx", description="Cross-account S3 thumbnail worker.")
    parser.add_argument("--version", action="version", version=f"thumbx {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for warning in unknown_names(os.environ):
        print(f"thumbx: warning: {warning}", file=sys.stderr)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"thumbx: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
