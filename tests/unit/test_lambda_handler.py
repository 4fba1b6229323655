"""The handler's own adaptation, without AWS: configuration errors and records without a usable id."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from lambda_shim import handler as shim
from worker.core.errors import ConfigError
from worker.runtime.batch import UnreportableFailure


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("THUMBX_ROLE_ARN", "THUMBX_DLQ_URL", "THUMBX_ENDPOINT_URL", "THUMBX_LAMBDA_SAFETY_MS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THUMBX_BUCKET", "images")
    monkeypatch.setenv("THUMBX_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/111111111111/jobs")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    shim.reset()
    yield
    shim.reset()


def sqs_record(body: str, message_id: object = "m-1") -> dict[str, object]:
    record: dict[str, object] = {"eventSource": "aws:sqs", "body": body, "attributes": {}}
    if message_id is not None:
        record["messageId"] = message_id
    return record


def test_a_configuration_error_names_the_variable_and_leaves_the_environment_cold(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THUMBX_QUEUE_URL", "not-a-queue")
    with pytest.raises(ConfigError, match="THUMBX_QUEUE_URL"):
        shim.handler({"Records": [sqs_record("{}")]}, None)
    assert shim.environment().runtime is None, "the next invocation initialises again"
    monkeypatch.setenv("THUMBX_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/111111111111/jobs")
    monkeypatch.setenv("THUMBX_LAMBDA_SAFETY_MS", "later")
    with pytest.raises(ConfigError, match="THUMBX_LAMBDA_SAFETY_MS"):
        shim.handler({"Records": [sqs_record("{}")]}, None)


def test_ignored_records_need_no_aws_and_are_acknowledged(clean_env: None) -> None:
    event = {"Records": [sqs_record('{"Event": "s3:TestEvent"}'), sqs_record('{"hello": 1}', "m-2")]}
    assert shim.handler(event, None) == {"batchItemFailures": []}


@pytest.mark.parametrize("message_id", [None, "", 42])
def test_a_record_to_retry_without_a_usable_message_id_fails_the_whole_batch(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, message_id: object
) -> None:
    # the time guard cannot start it, so it must be retried: never report "" or a made-up identifier
    monkeypatch.setenv("THUMBX_LAMBDA_SAFETY_MS", "900000")

    class Hurried:
        aws_request_id = "r-1"

        def get_remaining_time_in_millis(self) -> int:
            return 1000

    with pytest.raises(UnreportableFailure):
        shim.handler({"Records": [sqs_record('{"Event": "s3:TestEvent"}', message_id)]}, Hurried())


def test_each_invocation_prints_one_emf_document_of_its_message_counters(
    clean_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    event = {
        "Records": [sqs_record('{"Event": "s3:TestEvent"}'), sqs_record('{"Event": "s3:TestEvent"}', "m-2")]
    }
    assert shim.handler(event, None) == {"batchItemFailures": []}
    [line] = capsys.readouterr().out.splitlines()
    doc = json.loads(line)
    assert doc["Service"] == "thumbx-lambda"
    assert (doc["MessagesReceived"], doc["MessagesDeleted"], doc["RecordsIgnored"]) == (2, 2, 2)
    assert "MessagesRetried" not in doc
    assert "RecordsFailed" not in doc
    [directive] = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "thumbx"
    assert directive["Dimensions"] == [["Service"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "MessagesReceived": "Count",
        "MessagesDeleted": "Count",
        "RecordsIgnored": "Count",
    }

    # the next invocation's document carries its own counts (deltas), not the environment's totals
    shim.handler({"Records": [sqs_record('{"Event": "s3:TestEvent"}', "m-3")]}, None)
    [line] = capsys.readouterr().out.splitlines()
    assert (json.loads(line)["MessagesReceived"], json.loads(line)["RecordsIgnored"]) == (1, 1)


def test_deprecated_and_unknown_settings_are_logged_once_per_environment(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THUMBX_QUEUE_CREDENTIALS", "base")
    monkeypatch.setenv("THUMBX_BUKET", "images")
    monkeypatch.setattr(shim, "configure_logging", lambda *args: None)  # keep capture_logs' configuration
    event = {"Records": [sqs_record('{"Event": "s3:TestEvent"}')]}
    with capture_logs() as logs:
        assert shim.handler(event, None) == {"batchItemFailures": []}
        assert shim.handler(event, None) == {"batchItemFailures": []}
    details = sorted(e["detail"] for e in logs if e["event"] == "config_warning")
    assert details == [
        "THUMBX_BUKET is not a thumbx setting and is ignored (did you mean THUMBX_BUCKET?)",
        "THUMBX_QUEUE_CREDENTIALS=base is deprecated; use THUMBX_QUEUE_CREDENTIALS=compute (same meaning)",
    ]
