"""Logs a user can ship: JSON lines off a terminal, and never a credential."""

from __future__ import annotations

import json

import pytest
import structlog

from worker.observability.telemetry import Metrics, configure_logging


def test_json_lines_without_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    try:
        structlog.get_logger("t").info(
            "message_done",
            message_id="m-1",
            key="input/a.jpg",
            aws_secret_access_key="wJalrXUtnFEMI/K7MDENG",
            session_token="FQoGZXIvYXdzE",
        )
        structlog.get_logger("t").debug("hidden at info level")
    finally:
        structlog.reset_defaults()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "message_done"
    assert event["message_id"] == "m-1"
    assert event["level"] == "info"
    assert "timestamp" in event
    assert "wJalrXUtnFEMI" not in lines[0]
    assert "FQoGZXIvYXdzE" not in lines[0]


def test_metric_counts_filter_by_labels() -> None:
    metrics = Metrics()
    metrics.inc("records", status="succeeded", reason="rendered")
    metrics.inc("records", status="permanent", reason="corrupt_image")
    metrics.inc("records", status="permanent", reason="unsupported_format")
    assert metrics.count("records") == 3
    assert metrics.count("records", status="permanent") == 2
    assert metrics.count("records", reason="corrupt_image") == 1
    assert metrics.count("other") == 0
