"""Help a user can work from: every option explained with its default, the variables listed, no markup."""

from __future__ import annotations

import argparse
import os

import pytest

import worker.cli.main as cli
from worker.core.settings import SETTINGS


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found: dict[str, argparse.ArgumentParser] = {}
    for name, sub in action.choices.items():
        found[name] = sub
        for nested in sub._actions:  # e.g. `thumbx dlq list`
            if isinstance(nested, argparse._SubParsersAction):
                found |= {f"{name} {n}": p for n, p in nested.choices.items()}
    return found


COMMANDS = _subcommands()


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction, argparse._VersionAction))
    ]


def test_bare_thumbx_prints_the_command_list_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: thumbx")
    for name in ("worker", "demo", "render", "backfill", "policies", "doctor", "healthcheck", "provision"):
        assert f"\n    {name} " in err or f"\n    {name}\n" in err


def test_worker_help_lists_every_variable_with_its_default() -> None:
    text = COMMANDS["worker"].format_help()
    for setting in SETTINGS:
        if setting.scope == "lambda":
            assert setting.name not in text
            continue
        shown = setting.default_text.replace("`", "")
        assert f"  {setting.name:<30} default: {shown}\n" in text
    assert "  THUMBX_CONCURRENCY             default: 10\n" in text
    assert "  THUMBX_QUEUE_URL               default: required\n" in text


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help_and_shows_its_default(name: str) -> None:
    parser = COMMANDS[name]
    text = parser.format_help()
    assert "``" not in text
    for action in _options(parser):
        assert action.help, f"thumbx {name} {action.option_strings or action.dest}: no help"
        meaningful = action.default not in (None, False, []) and action.option_strings
        if meaningful:  # what --help prints for it
            rendered = parser._get_formatter()._get_help_string(action) or ""
            assert "default" in rendered, f"thumbx {name} {action.option_strings}: default not shown"


def test_defaults_appear_in_the_printed_help() -> None:
    backfill = COMMANDS["backfill"].format_help()
    assert "--rate RATE           messages per second at most (default: 50.0)" in backfill
    provision = " ".join(COMMANDS["provision"].format_help().split())
    assert "--region REGION region of every resource (default: us-east-1)" in provision


def test_backfill_without_a_queue_names_its_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("THUMBX_")]:
        monkeypatch.delenv(name)
    assert cli.main(["backfill", "--bucket", "images-b"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "thumbx: configuration error: --queue-url / THUMBX_QUEUE_URL: required but not set;"
        " e.g. THUMBX_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/222222222222/thumbx-jobs"
    ]
