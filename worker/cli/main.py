"""``thumbx``: one entry point, one module per subcommand (``worker/cli/*.py``)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from worker import __version__
from worker.core.environ import warnings
from worker.core.errors import ConfigError

COMMANDS = (
    "worker.cli.worker",
    "worker.cli.demo",
    "worker.cli.provision",
    "worker.cli.policies",
    "worker.cli.doctor",
    "worker.cli.healthcheck",
    "worker.cli.render",
    "worker.cli.backfill",
    "worker.cli.dlq",
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; every option's default shown unless it has none (or says it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """Every ``thumbx`` parser: :class:`HelpFormatter`, and no reST ``literal`` markup in descriptions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["formatter_class"] = HelpFormatter
        for key in ("description", "epilog"):
            if kwargs.get(key):
                kwargs[key] = kwargs[key].replace("``", "")
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="thumbx", description="Cross-account S3 thumbnail worker.")
    parser.add_argument("--version", action="version", version=f"thumbx {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:  # `thumbx` (or `thumbx dlq`) alone: the list of commands
        usage = getattr(args, "usage_of", parser)
        usage.print_help(sys.stderr)
        return 2
    for warning in warnings(os.environ):
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
