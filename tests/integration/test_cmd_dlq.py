"""`thumbx dlq list` / `thumbx dlq redrive` against the moto server over HTTP, IAM enforced, run as an
operator in B who holds exactly the policy `--print-policy` prints."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from PIL import Image

from tests.reliability import queue_counts, rendered, s3_event, upload
from tests.support import running_worker, wait_until, worker_settings
from tests.unit.images import encode
from worker.cli.main import main
from worker.ops.provision import Deployment, admin_client

Capture = pytest.CaptureFixture[str]


def _operator(deployment: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: Capture, command: str) -> None:
    """Create an IAM user in B holding `thumbx dlq <command> --print-policy`, and act as that user."""
    for name in ("THUMBX_ROLE_ARN", "THUMBX_EXTERNAL_ID", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THUMBX_DLQ_URL", deployment.dlq_url)
    monkeypatch.setenv("THUMBX_QUEUE_URL", deployment.queue_url)
    monkeypatch.setenv("THUMBX_ENDPOINT_URL", deployment.endpoint)
    monkeypatch.setenv("THUMBX_REGION", deployment.region)
    capsys.readouterr()  # drop what came before (worker logs)
    assert main(["dlq", command, "--print-policy"]) == 0
    document = capsys.readouterr().out
    iam = admin_client(deployment, "iam")
    user = f"dlq-{command}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="thumbx-dlq", PolicyDocument=document)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])


def _seed(deployment: Deployment) -> None:
    """Three dead letters: two as the worker sends them (one under the attribute's old name), one moved by
    the queue's redrive policy (no thumbx attributes)."""
    sqs = admin_client(deployment, "sqs")

    def send(key: str, attributes: dict[str, str]) -> None:
        sqs.send_message(
            QueueUrl=deployment.dlq_url,
            MessageBody=s3_event(deployment, key, '"etag"'),
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )

    send(
        "input/report.jpg",
        {
            "thumbx-reason": "unsupported_format",
            "thumbx-detail": "pdf input is not accepted",
            "thumbx-key": "input/report.jpg",
            "thumbx-failed-record-indexes": "0",
        },
    )
    send(
        "input/cut.jpg",
        {"thumbx-reason": "corrupt_image", "thumbx-key": "input/cut.jpg", "thumbx-failed-records": "0"},
    )
    send("input/old photo.jpg", {})


def _bodies(deployment: Deployment, url: str) -> list[str]:
    sqs = admin_client(deployment, "sqs")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=0)
    return [m["Body"] for m in got.get("Messages", [])]


def test_list_prints_reason_key_receives_and_age_and_leaves_every_message(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    admin_client(deployment, "sqs").purge_queue(QueueUrl=deployment.dlq_url)
    _seed(deployment)
    _operator(deployment, monkeypatch, capsys, "list")

    assert main(["dlq", "list"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["reason", "key", "receives", "age", "message id"]
    assert set(lines[1]) == {"-", " "}
    rows = sorted(re.split(r"\s{2,}", line)[:4] for line in lines[2:-1])
    assert [row[:3] for row in rows] == [
        ["corrupt_image", "input/cut.jpg", "1"],
        ["redrive_policy", "input/old photo.jpg", "1"],  # the key read from the body
        ["unsupported_format", "input/report.jpg", "1"],
    ]
    assert all(re.fullmatch(r"\d+s", row[3]) for row in rows)
    assert lines[-1] == f"3 dead letters on {deployment.dlq_url}"
    assert queue_counts(deployment, deployment.dlq_url) == (3, 0)  # all visible again at once

    assert main(["dlq", "list", "--json"]) == 0
    listed = {d["key"]: d for d in json.loads(capsys.readouterr().out)}
    assert listed["input/report.jpg"]["detail"] == "pdf input is not accepted"
    assert listed["input/report.jpg"]["receive_count"] == 2  # the table's listing received it once
    assert listed["input/cut.jpg"]["failed_record_indexes"] == "0"  # the old attribute name, still read
    assert listed["input/old photo.jpg"]["reason"] == "redrive_policy"


def test_the_list_policy_does_not_allow_a_redrive(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    admin_client(deployment, "sqs").purge_queue(QueueUrl=deployment.dlq_url)
    _seed(deployment)
    _operator(deployment, monkeypatch, capsys, "list")
    assert main(["dlq", "redrive", "--reason", "corrupt_image"]) == 1
    assert "thumbx dlq redrive: " in capsys.readouterr().err
    assert queue_counts(deployment, deployment.dlq_url) == (3, 0)


def test_redrive_by_reason_moves_only_those_then_all_and_a_rerun_moves_nothing(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    sqs = admin_client(deployment, "sqs")
    sqs.purge_queue(QueueUrl=deployment.dlq_url)
    sqs.purge_queue(QueueUrl=deployment.queue_url)
    _seed(deployment)
    _operator(deployment, monkeypatch, capsys, "redrive")

    assert main(["dlq", "redrive", "--reason", "corrupt_image"]) == 0
    assert capsys.readouterr().out == (
        f"moved 1 to {deployment.queue_url} (receive-send-delete); 2 with another reason left on the DLQ\n"
    )
    assert [
        json.loads(b)["Records"][0]["s3"]["object"]["key"] for b in _bodies(deployment, deployment.queue_url)
    ] == ["input%2Fcut.jpg"]
    assert queue_counts(deployment, deployment.dlq_url) == (2, 0)

    assert main(["dlq", "redrive", "--rate", "50"]) == 0
    out = capsys.readouterr()
    assert out.out == f"moved 2 to {deployment.queue_url} (receive-send-delete)\n"
    assert out.err.startswith("StartMessageMoveTask unavailable (")  # moto has no move tasks
    assert queue_counts(deployment, deployment.dlq_url) == (0, 0)
    assert queue_counts(deployment, deployment.queue_url)[0] == 3

    assert main(["dlq", "redrive", "--reason", "corrupt_image"]) == 0  # nothing left: a no-op
    assert capsys.readouterr().out == f"moved 0 to {deployment.queue_url} (receive-send-delete)\n"


async def test_a_dead_letter_redriven_after_the_fix_gets_its_thumbnails(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: Capture
) -> None:
    """The user's story: PNG uploads dead-letter while the worker admits only JPEG; once PNG is allowed,
    the redrive (the only way that upload's event comes back) renders it."""
    admin_client(deployment, "sqs").purge_queue(QueueUrl=deployment.dlq_url)
    upload(deployment, "input/scan.png", encode(Image.new("RGB", (300, 200), (9, 99, 199)), "PNG"))
    strict = worker_settings(deployment, THUMBX_ALLOWED_FORMATS="jpeg")
    async with running_worker(deployment, settings=strict) as worker:
        await wait_until(lambda: worker.outcome_for("input/scan.png") is not None, timeout=40)
        await wait_until(lambda: queue_counts(deployment, deployment.dlq_url)[0] == 1, timeout=10)
    assert not rendered(deployment, "input/scan.png")
    _operator(deployment, monkeypatch, capsys, "redrive")

    assert await asyncio.to_thread(main, ["dlq", "list"]) == 0
    (row,) = capsys.readouterr().out.splitlines()[2:-1]
    assert re.split(r"\s{2,}", row)[:2] == ["unsupported_format", "input/scan.png"]

    assert await asyncio.to_thread(main, ["dlq", "redrive", "--reason", "unsupported_format"]) == 0
    assert capsys.readouterr().out.startswith(f"moved 1 to {deployment.queue_url} ")
    async with running_worker(deployment, settings=worker_settings(deployment)):
        await wait_until(lambda: rendered(deployment, "input/scan.png"), timeout=40)
    assert queue_counts(deployment, deployment.dlq_url) == (0, 0)
