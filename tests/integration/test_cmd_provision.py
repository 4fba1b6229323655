"""`thumbx provision` (the compose file's init step) against LocalStack: provisions once, then is a no-op."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.localstack import LocalStackServer
from worker.cli.main import main
from worker.ops.provision import ACCOUNT_A, ACCOUNT_B


def test_provision_then_rerun_changes_nothing(
    localstack_server: LocalStackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = localstack_server.endpoint_url
    env_file = tmp_path / "worker.env"
    argv = ["provision", "--endpoint", endpoint, "--bucket", "thumbx-cli", "--queue", "thumbx-cli-jobs"]
    assert main([*argv, "--env-file", str(env_file)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["provisioned"] is True
    # the queue URL compose hard-codes for the worker: path style, account B, on the endpoint
    assert first["queue_url"] == f"{endpoint}/queue/us-east-1/{ACCOUNT_B}/thumbx-cli-jobs"
    assert first["role_arn"] == f"arn:aws:iam::{ACCOUNT_B}:role/ThumbXRole"
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert env["THUMBX_QUEUE_URL"] == first["queue_url"]
    assert env["AWS_ACCESS_KEY_ID"] == first["worker_access_key_id"] != ACCOUNT_A

    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["provisioned"] is False


def test_provision_refuses_a_non_url_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["provision", "--endpoint", "localstack:4566"]) == 2
    assert "--endpoint must be an http(s) URL" in capsys.readouterr().err
