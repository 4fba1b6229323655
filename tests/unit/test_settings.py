"""The settings table: every value validated where it is read, one line naming it with a valid example."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from worker.core import environ
from worker.core import settings as table
from worker.core.config import load_settings
from worker.core.environ import unknown_names
from worker.core.errors import ConfigError
from worker.core.settings import SETTINGS, markdown_table

ROOT = Path(__file__).resolve().parents[2]

QUEUE = "https://sqs.eu-west-1.amazonaws.com/222222222222/thumbx-jobs"
ROLE = "arn:aws:iam::222222222222:role/ThumbXRole"
BASE = {"THUMBX_QUEUE_URL": QUEUE, "THUMBX_BUCKET": "images-b"}


def _error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return str(info.value)


def _worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_ACCESS_KEY_ID": "x"}
    clean["AWS_SECRET_ACCESS_KEY"] = "y"
    return subprocess.run(
        [sys.executable, "-m", "worker"],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_example_in_the_table_is_a_valid_value(setting: table.Setting) -> None:
    env = BASE | {setting.name: setting.example}
    if setting.needs:
        env[setting.needs] = ROLE
    if setting.name == "THUMBX_ENDPOINT_URL":
        env["THUMBX_QUEUE_URL"] = f"{setting.example}/222222222222/thumbx-jobs"
    if setting.name == "THUMBX_LAMBDA_SAFETY_MS":
        from worker.runtime.batch import BatchSettings

        assert BatchSettings.from_env(env, 4).safety_margin_ms == int(setting.example)
    load_settings(env)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"THUMBX_ENDPOINT_URL": "127.0.0.1:4566"},
            "THUMBX_ENDPOINT_URL: '127.0.0.1:4566' is not an http:// or https:// URL;"
            " e.g. THUMBX_ENDPOINT_URL=http://127.0.0.1:4566",
        ),
        (
            {"THUMBX_BUCKET": "Bad_Bucket!"},
            "THUMBX_BUCKET: 'Bad_Bucket!' is not a bucket name (3-63 lowercase letters, digits, '.' and '-');"
            " e.g. THUMBX_BUCKET=thumbx-images-b",
        ),
        (
            {"THUMBX_BUCKET": "192.168.1.10"},
            "THUMBX_BUCKET: '192.168.1.10' is not a bucket name (it is formatted as an IP address);"
            " e.g. THUMBX_BUCKET=thumbx-images-b",
        ),
        (
            {"THUMBX_DLQ_URL": "bad"},
            "THUMBX_DLQ_URL: 'bad' is not an SQS queue URL (https://<host>/<12-digit account>/<queue name>);"
            " e.g. THUMBX_DLQ_URL=https://sqs.eu-west-1.amazonaws.com/222222222222/thumbx-jobs-dlq",
        ),
        (
            {"THUMBX_PRESETS": ""},
            "THUMBX_PRESETS: set but empty (unset it for the default);"
            " e.g. THUMBX_PRESETS=sm:128:webp,lg:1024:jpeg:q=85",
        ),
        (
            {"THUMBX_INPUT_PREFIX": " "},
            "THUMBX_INPUT_PREFIX: set but empty (unset it for the default);"
            " e.g. THUMBX_INPUT_PREFIX=uploads/",
        ),
        (
            {"THUMBX_INPUT_PREFIX": "in"},
            "THUMBX_INPUT_PREFIX: 'in' must end with '/'; e.g. THUMBX_INPUT_PREFIX=uploads/",
        ),
        (
            {"THUMBX_SESSION_SECONDS": "5000"},
            "THUMBX_SESSION_SECONDS: has no effect without THUMBX_ROLE_ARN;"
            " e.g. THUMBX_ROLE_ARN=arn:aws:iam::222222222222:role/ThumbXRole",
        ),
        (
            {"THUMBX_SESSION_SECONDS": "5000", "THUMBX_ROLE_ARN": ROLE},
            "THUMBX_SESSION_SECONDS: 5000 is outside 900..3600; e.g. THUMBX_SESSION_SECONDS=3600",
        ),
        (
            {"THUMBX_QUEUE_URL": "http://127.0.0.1:5000/222222222222/thumbx-jobs"},
            "THUMBX_QUEUE_URL: host '127.0.0.1' is not AWS and THUMBX_ENDPOINT_URL is unset (requests would"
            " go to AWS); e.g. THUMBX_ENDPOINT_URL=http://127.0.0.1:5000",
        ),
        (
            {"THUMBX_PRESETS": "sm:128:gif"},
            "THUMBX_PRESETS: preset 'sm' format 'gif' is not one of jpeg, webp, png, avif;"
            " e.g. THUMBX_PRESETS=sm:128:webp,lg:1024:jpeg:q=85",
        ),
        (
            {"THUMBX_CONCURRENCY": "many"},
            "THUMBX_CONCURRENCY: 'many' is not a whole number; e.g. THUMBX_CONCURRENCY=10",
        ),
        (
            {"THUMBX_LOG_LEVEL": "loud"},
            "THUMBX_LOG_LEVEL: 'loud' is not one of debug, info, warning, error; e.g. THUMBX_LOG_LEVEL=debug",
        ),
    ],
)
def test_a_bad_value_gives_one_line_naming_it_with_a_valid_example(
    override: dict[str, str], expected: str
) -> None:
    assert _error(BASE | override) == expected


def test_the_settings_dataclass_defaults_agree_with_the_table() -> None:
    from worker.core.config import RoleSettings, Settings

    loaded = load_settings(BASE | {"THUMBX_RENDER_THREADS": "2", "THUMBX_ROLE_ARN": ROLE})
    assert loaded == Settings(QUEUE, "images-b", role=RoleSettings(ROLE), render_threads=2)


def test_an_empty_optional_value_without_default_means_unset() -> None:
    # the templates pass ExternalId="" when none is configured
    settings = load_settings(BASE | {"THUMBX_ROLE_ARN": ROLE, "THUMBX_EXTERNAL_ID": "", "THUMBX_DLQ_URL": ""})
    assert settings.role is not None
    assert settings.role.external_id is None
    assert settings.dlq_url is None


def test_emulator_urls_on_the_endpoint_host_are_accepted() -> None:
    settings = load_settings(
        {
            "THUMBX_BUCKET": "images-b",
            "THUMBX_ENDPOINT_URL": "http://localhost:4566",
            "THUMBX_QUEUE_URL": "http://127.0.0.1:4566/queue/us-east-1/222222222222/thumbx-jobs",
            "THUMBX_DLQ_URL": "http://127.0.0.1:4566/222222222222/thumbx-jobs-dlq",
        }
    )
    assert settings.endpoint_url == "http://localhost:4566"


def test_a_queue_host_off_the_endpoint_is_flagged_but_accepted() -> None:
    env = BASE | {
        "THUMBX_QUEUE_URL": "http://127.0.0.1:5000/222222222222/thumbx-jobs",
        "THUMBX_DLQ_URL": "http://localhost:4566/222222222222/thumbx-jobs-dlq",  # loopback names are one host
        "THUMBX_ENDPOINT_URL": "http://127.0.0.1:4566",  # e.g. a proxy in front of the emulator
    }
    assert load_settings(env).queue_url == env["THUMBX_QUEUE_URL"]
    assert environ.warnings(env) == [
        "THUMBX_QUEUE_URL: host '127.0.0.1:5000' differs from THUMBX_ENDPOINT_URL's '127.0.0.1:4566';"
        " requests go to the endpoint (if not meant:"
        " THUMBX_QUEUE_URL=http://127.0.0.1:4566/222222222222/thumbx-jobs)"
    ]
    assert environ.warnings(env | {"THUMBX_ENDPOINT_URL": "127.0.0.1:4566"}) == []  # refused elsewhere


def test_unknown_names_are_warned_about_with_the_closest_known_name() -> None:
    env = {"THUMBX_PRESET": "sm:128:webp", "THUMBX_BUKET": "x", "THUMBX_ZZZ": "1", "THUMBX_SHARED": "/s"}
    assert unknown_names(env | {"HOME": "/root", "THUMBX_PRESETS": "x"}) == [
        "THUMBX_BUKET is not a thumbx setting and is ignored (did you mean THUMBX_BUCKET?)",
        "THUMBX_PRESET is not a thumbx setting and is ignored (did you mean THUMBX_PRESETS?)",
        "THUMBX_ZZZ is not a thumbx setting and is ignored (see `thumbx worker --help`)",
    ]


def test_worker_with_a_schemeless_endpoint_exits_2_with_one_line_and_a_typo_warning() -> None:
    proc = _worker(BASE | {"THUMBX_ENDPOINT_URL": "127.0.0.1:4566", "THUMBX_PRESET": "sm:128:webp"})
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "thumbx: warning: THUMBX_PRESET is not a thumbx setting and is ignored"
        " (did you mean THUMBX_PRESETS?)",
        "thumbx: configuration error: THUMBX_ENDPOINT_URL: '127.0.0.1:4566' is not an http:// or https://"
        " URL; e.g. THUMBX_ENDPOINT_URL=http://127.0.0.1:4566",
    ]
    assert "Traceback" not in proc.stderr


def test_worker_refuses_to_start_when_its_health_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _worker(BASE | {"THUMBX_HEALTH_PORT": str(port)})
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"thumbx: configuration error: THUMBX_HEALTH_PORT: cannot listen on 127.0.0.1:{port} (Address already"
        " in use); e.g. THUMBX_HEALTH_PORT=8081 (0: any free port, off: no health server)"
    ]


def test_the_documented_configuration_table_is_generated_from_the_settings_table() -> None:
    assert table.DOC == ROOT / "docs" / "configuration.md"
    text = table.DOC.read_text(encoding="utf-8")
    assert table.render_doc(text) == text, "run: python -m worker.core.settings"
    for setting in SETTINGS:
        assert f"| `{setting.name}` |" in text


def test_a_hand_edit_of_the_documented_table_is_caught_and_repaired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "configuration.md"
    original = table.DOC.read_text(encoding="utf-8")
    doc.write_text(original.replace("| `THUMBX_CONCURRENCY` | integer 1..256 | `10` |", "| `X` | | `4` |"))
    assert table.main(["--check", "--doc", str(doc)]) == 1
    out = capsys.readouterr()
    assert "+| `THUMBX_CONCURRENCY` | integer 1..256 | `10` |" in out.out
    assert "configuration table is stale; run: python -m worker.core.settings" in out.err
    assert table.main(["--doc", str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == original


def test_the_markdown_table_has_one_row_per_setting() -> None:
    rows = markdown_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [s.name for s in SETTINGS]


def test_healthcheck_reads_the_health_settings_as_the_worker_does(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from worker.cli.main import main

    monkeypatch.setenv("THUMBX_HEALTH_PORT", "80800")
    assert main(["healthcheck"]) == 2
    assert capsys.readouterr().err == (
        "thumbx: configuration error: THUMBX_HEALTH_PORT: 80800 is outside 0..65535;"
        " e.g. THUMBX_HEALTH_PORT=8080\n"
    )


async def test_service_refuses_a_health_port_taken_after_the_start_up_check() -> None:
    from worker.runtime import service

    with socket.socket() as taken:  # taken between `thumbx worker`'s check and the server's bind
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(BASE | {"THUMBX_HEALTH_PORT": str(port)})
        with pytest.raises(ConfigError, match=f"THUMBX_HEALTH_PORT: cannot listen on 127.0.0.1:{port}"):
            await service.run(settings, handle_signals=False)


@pytest.mark.parametrize(("old", "current"), [("role", "storage"), ("base", "compute"), ("BASE", "compute")])
def test_the_old_queue_placement_spelling_still_works_with_a_deprecation_warning(
    old: str, current: str
) -> None:
    env = BASE | {"THUMBX_ROLE_ARN": ROLE, "THUMBX_QUEUE_CREDENTIALS": old}
    assert load_settings(env).queue_credentials == current
    assert environ.warnings(env) == [
        f"THUMBX_QUEUE_CREDENTIALS={old.lower()} is deprecated; use THUMBX_QUEUE_CREDENTIALS={current} "
        "(same meaning)"
    ]
    assert environ.warnings(env | {"THUMBX_QUEUE_CREDENTIALS": current}) == []


def test_queue_placement_uses_the_templates_vocabulary() -> None:
    from worker.ops.deploy_spec import QUEUE_PLACEMENTS

    assert set(table.BY_NAME["THUMBX_QUEUE_CREDENTIALS"].choices) == set(QUEUE_PLACEMENTS)
    # without a role to assume the queue can only be read with the base (compute account's) credentials
    assert load_settings(BASE | {"THUMBX_QUEUE_CREDENTIALS": "storage"}).queue_credentials == "compute"


def test_the_old_spelling_is_warned_about_on_the_command_line() -> None:
    proc = _worker(BASE | {"THUMBX_QUEUE_CREDENTIALS": "base", "THUMBX_ENDPOINT_URL": "127.0.0.1:4566"})
    assert proc.returncode == 2
    assert "thumbx: warning: THUMBX_QUEUE_CREDENTIALS=base is deprecated" in proc.stderr


class _Recording(dict[str, str]):
    """An environment that remembers which names were asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)


def test_render_help_lists_exactly_the_variables_render_reads() -> None:
    from worker.cli.main import build_parser
    from worker.core.config import RENDER_SETTINGS, load_limits, load_presets

    env = _Recording()
    load_limits(env)
    load_presets(env)
    assert env.asked == set(RENDER_SETTINGS)
    choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert isinstance(choices, dict)
    epilog = choices["render"].epilog
    listed = {word for word in epilog.split() if word.startswith("THUMBX_")}
    assert listed == set(RENDER_SETTINGS)


def test_the_lambda_safety_margin_default_is_the_tables() -> None:
    from worker.runtime.batch import BatchSettings

    default = table.BY_NAME["THUMBX_LAMBDA_SAFETY_MS"].default
    assert BatchSettings.from_env({}, 4).safety_margin_ms == int(default or 0) == 10_000
    assert BatchSettings().safety_margin_ms == BatchSettings.from_env({}, 4).safety_margin_ms
