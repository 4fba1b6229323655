"""`thumbx doctor` against the emulator with IAM enforcement on: a correct setup passes, broken ones fail
on the line that names what is broken."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import boto3
import pytest

from worker.cli.main import main
from worker.core.config import load_settings
from worker.ops import policies
from worker.ops.doctor import Check, Status, exit_code
from worker.ops.doctor_probe import PROBE_DIR, run_doctor
from worker.ops.provision import Deployment, Keys, Names, admin_client


def _session(keys: Keys, deployment: Deployment) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        region_name=deployment.region,
    )


def _doctor(deployment: Deployment, *, inspector: bool = True) -> dict[str, Check]:
    return _doctor_with(deployment, deployment.worker_env(), inspector=inspector)


def _doctor_with(deployment: Deployment, env: dict[str, str], *, inspector: bool = True) -> dict[str, Check]:
    checks = run_doctor(
        load_settings(env),
        _session(deployment.worker_keys, deployment),
        _session(deployment.admin_keys, deployment) if inspector else None,
    )
    by_name = {check.name: check for check in checks}
    assert len(by_name) == len(checks), "check names are unique"
    return by_name


def _failures(checks: dict[str, Check]) -> list[str]:
    return sorted(name for name, check in checks.items() if check.status is Status.FAILED)


def _probe_objects(deployment: Deployment) -> list[str]:
    listed = admin_client(deployment, "s3").list_objects_v2(Bucket=deployment.bucket)
    return [obj["Key"] for obj in listed.get("Contents", []) if PROBE_DIR in obj["Key"]]


def test_correct_setup_passes_and_cleans_up(deployment: Deployment) -> None:
    checks = _doctor(deployment)
    assert _failures(checks) == []
    assert exit_code(checks.values()) == 0
    for name in (
        "session-names",
        "assume-role",
        "read-input",
        "write-output",
        "delete-refused",
        "list-refused",
        "write-outside-refused",
        "block-public-access",
        "object-ownership",
        "notification-filter",
        "queue-dead-letter",
        "queue-visibility",
        "worker-dead-letter",
        "probes-cleaned",
    ):
        assert checks[name].status is Status.PASSED, checks[name]
    # moto cannot carry a conditional Deny, so the TLS statement is judged statically, and says so
    assert checks["tls-deny"].status is Status.NOT_CHECKABLE
    assert "statically" in checks["tls-deny"].detail
    assert _probe_objects(deployment) == []


def test_role_that_can_delete_fails_the_delete_line(deployment: Deployment) -> None:
    admin_client(deployment, "iam").put_role_policy(
        RoleName="ThumbXRole",
        PolicyName="too-generous",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:DeleteObject",
                        "Resource": f"arn:aws:s3:::{deployment.bucket}/{deployment.output_prefix}*",
                    }
                ],
            }
        ),
    )
    checks = _doctor(deployment)
    assert _failures(checks) == ["delete-refused"]
    assert "may delete" in checks["delete-refused"].detail
    assert exit_code(checks.values()) == 1


def test_notification_covering_the_output_prefix_fails_the_loop_guard(deployment: Deployment) -> None:
    admin_client(deployment, "s3").put_bucket_notification_configuration(
        Bucket=deployment.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"Id": "everything", "QueueArn": deployment.queue_arn, "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    checks = _doctor(deployment)
    assert _failures(checks) == ["notification-filter"]
    assert "covers the output prefix 'thumbnails/'" in checks["notification-filter"].detail
    assert "no prefix filter" in checks["notification-filter"].detail


def test_queue_without_dead_letter_queue_fails_the_dlq_line(deployment: Deployment) -> None:
    sqs = admin_client(deployment, "sqs")
    sqs.set_queue_attributes(QueueUrl=deployment.queue_url, Attributes={"RedrivePolicy": ""})
    assert (
        "RedrivePolicy"
        not in sqs.get_queue_attributes(QueueUrl=deployment.queue_url, AttributeNames=["All"])["Attributes"]
    )
    checks = _doctor(deployment)
    assert _failures(checks) == ["queue-dead-letter"]
    assert "retried forever" in checks["queue-dead-letter"].detail


def test_dead_letter_queue_the_worker_cannot_reach_or_lacks_fails_its_line(deployment: Deployment) -> None:
    checks = _doctor(deployment)
    assert "also the queue's redrive target" in checks["worker-dead-letter"].detail
    # a DLQ the worker's identity was granted nothing on: moto enforces the identity policy
    other = admin_client(deployment, "sqs").create_queue(QueueName="not-granted-dlq")["QueueUrl"]
    env = deployment.worker_env() | {"THUMBX_DLQ_URL": other}
    refused = _doctor_with(deployment, env)
    assert _failures(refused) == ["worker-dead-letter"]
    assert "refused GetQueueAttributes" in refused["worker-dead-letter"].detail
    unset = {k: v for k, v in deployment.worker_env().items() if k != "THUMBX_DLQ_URL"}
    missing = _doctor_with(deployment, unset)
    assert _failures(missing) == ["worker-dead-letter"]
    assert "THUMBX_DLQ_URL is unset" in missing["worker-dead-letter"].detail


def test_without_an_inspector_config_lines_are_not_checkable_and_the_probe_stays(
    deployment: Deployment,
) -> None:
    checks = _doctor(deployment, inspector=False)
    assert _failures(checks) == []
    for name in ("read-input", "block-public-access", "object-ownership", "tls-deny", "notification-filter"):
        assert checks[name].status is Status.NOT_CHECKABLE, checks[name]
        assert "--inspect-profile" in checks[name].detail, checks[name]
    assert checks["write-output"].status is Status.PASSED
    assert checks["delete-refused"].status is Status.PASSED
    assert _probe_objects(deployment) == [f"{deployment.output_prefix}{PROBE_DIR}probe.txt"]


def test_cli_prints_the_checklist_and_exits_by_it(
    deployment: Deployment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    credentials = configparser.ConfigParser()
    credentials["thumbx-admin"] = {
        "aws_access_key_id": deployment.admin_keys.access_key_id,
        "aws_secret_access_key": deployment.admin_keys.secret_access_key,
    }
    path = tmp_path / "credentials"
    with path.open("w") as handle:
        credentials.write(handle)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-config"))
    for name, value in deployment.worker_env().items():
        monkeypatch.setenv(name, value)
    assert main(["doctor", "--inspect-profile", "thumbx-admin"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["STATUS", "CHECK", "WHY"]
    assert "0 failed" in out
    # the Lambda's 60 s timeout needs a 360 s visibility; the demo queue has 60 s
    assert main(["doctor", "--inspect-profile", "thumbx-admin", "--lambda-timeout", "60"]) == 1
    assert "under 6x the Lambda timeout" in capsys.readouterr().out


def test_the_emulator_carries_the_shipped_documents(deployment: Deployment) -> None:
    """One source of truth: what provisioning put on ThumbXRole is what worker.ops.policies renders."""
    iam = admin_client(deployment, "iam")
    stored = iam.get_role_policy(RoleName="ThumbXRole", PolicyName="thumbx-least-privilege")["PolicyDocument"]
    scope = policies.StorageScope(
        bucket=deployment.bucket,
        queue_arn=deployment.queue_arn,
        dlq_arn=deployment.dlq_arn,
        account_id=deployment.account_b,
    )
    assert stored == policies.role_permission_policy(scope)
    trust = iam.get_role(RoleName="ThumbXRole")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {"sts:ExternalId": deployment.external_id}


@pytest.mark.parametrize("names", [Names(queue_in="a")])
def test_queue_in_the_compute_account_is_checked_with_its_own_credentials(deployment: Deployment) -> None:
    assert deployment.queue_credentials == "compute"
    checks = _doctor(deployment)
    assert _failures(checks) == []
    assert checks["queue-dead-letter"].status is Status.PASSED
    assert checks["notification-filter"].status is Status.PASSED
