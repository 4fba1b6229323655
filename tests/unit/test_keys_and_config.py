"""Key planning and configuration: deterministic outputs, the loop guard, one clear line per bad setting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from worker.core.config import load_settings
from worker.core.errors import ConfigError
from worker.core.keys import KeyLayout
from worker.core.presets import parse_presets

BASE_ENV = {
    "THUMBX_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/222222222222/thumbx-jobs",
    "THUMBX_BUCKET": "images-b",
    "THUMBX_ROLE_ARN": "arn:aws:iam::222222222222:role/ThumbXRole",
}


def test_outputs_are_planned_under_the_output_prefix() -> None:
    presets = parse_presets("sm:128:webp,lg:1024:jpeg")
    planned = KeyLayout().outputs("input/2024/holiday photo.jpg", presets)
    assert [p.key for p in planned] == [
        "thumbnails/2024/holiday photo.jpg/sm.webp",
        "thumbnails/2024/holiday photo.jpg/lg.jpg",
    ]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("thumbnails/a.jpg/sm.webp", "output_prefix"),
        ("other/a.jpg", "outside_input_prefix"),
        ("input/", "folder_marker"),
        ("input/photos/", "folder_marker"),
        ("input/a.jpg", None),
    ],
)
def test_loop_guard_and_prefix_refusals(key: str, reason: str | None) -> None:
    assert KeyLayout().refusal(key) == reason


def test_defaults() -> None:
    settings = load_settings(BASE_ENV)
    assert settings.role is not None
    assert settings.role.duration_seconds == 3600
    assert settings.role.session_name == "thumbx-worker"
    assert settings.queue_credentials == "storage"
    assert [p.name for p in settings.presets] == ["sm", "md", "lg"]


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"THUMBX_QUEUE_URL": ""}, "THUMBX_QUEUE_URL"),
        ({"THUMBX_QUEUE_URL": "not a url"}, "THUMBX_QUEUE_URL"),
        ({"THUMBX_BUCKET": ""}, "THUMBX_BUCKET"),
        ({"THUMBX_ROLE_ARN": "arn:aws:iam::222222222222:user/bob"}, "THUMBX_ROLE_ARN"),
        ({"THUMBX_SESSION_SECONDS": "7200"}, "THUMBX_SESSION_SECONDS"),
        ({"THUMBX_CONCURRENCY": "many"}, "THUMBX_CONCURRENCY"),
        ({"THUMBX_PRESETS": "sm:128:gif"}, "THUMBX_PRESETS"),
        ({"THUMBX_PRESETS": "sm:128:webp,sm:256:jpeg"}, "THUMBX_PRESETS"),
        ({"THUMBX_OUTPUT_PREFIX": "input/thumbs/"}, "THUMBX_OUTPUT_PREFIX"),
        ({"THUMBX_QUEUE_CREDENTIALS": "both"}, "THUMBX_QUEUE_CREDENTIALS"),
    ],
)
def test_invalid_settings_name_the_variable(override: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(BASE_ENV | override)


def test_worker_exits_2_with_one_line_naming_the_variable() -> None:
    env = {"PATH": "/usr/bin:/bin", "THUMBX_BUCKET": "b"}
    proc = subprocess.run(
        [sys.executable, "-m", "worker"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "thumbx: configuration error: THUMBX_QUEUE_URL: required but not set;"
        " e.g. THUMBX_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/222222222222/thumbx-jobs"
    ]
