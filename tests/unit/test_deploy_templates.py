"""deploy/*.yaml: in sync with worker/ops/policies.py, and carrying the controls the issue asks for."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str

from tools import deploy_render
from tools.deploy_render import DEPLOY_DIR, TEMPLATES, render_template
from worker.core import config

STORAGE, COMPUTE = "storage-account.yaml", "compute-account.yaml"


def _load(name: str) -> dict[str, Any]:
    template, problems = decode_str((DEPLOY_DIR / name).read_text(encoding="utf-8"))
    assert not problems, problems
    plain: dict[str, Any] = json.loads(json.dumps(template))  # plain dicts and lists
    return plain


@pytest.fixture(scope="module")
def storage() -> dict[str, Any]:
    return _load(STORAGE)


@pytest.fixture(scope="module")
def compute() -> dict[str, Any]:
    return _load(COMPUTE)


def _props(template: dict[str, Any], resource: str) -> dict[str, Any]:
    return dict(template["Resources"][resource]["Properties"])


@pytest.mark.parametrize("name", TEMPLATES)
def test_committed_templates_match_the_policy_module(name: str) -> None:
    text = (DEPLOY_DIR / name).read_text(encoding="utf-8")
    assert render_template(text) == text, "run: python -m tools.deploy_render"
    assert text.count("# BEGIN GENERATED") >= 4


def test_a_hand_edit_of_a_generated_block_is_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in TEMPLATES:
        shutil.copy(DEPLOY_DIR / name, tmp_path / name)
    edited = (tmp_path / STORAGE).read_text().replace("- s3:GetObjectVersion\n", "- s3:DeleteObject\n", 1)
    (tmp_path / STORAGE).write_text(edited)
    assert deploy_render.main(["--check", "--deploy-dir", str(tmp_path)]) == 1
    assert re.search(r"^\+ +- s3:GetObjectVersion$", capsys.readouterr().out, re.MULTILINE)
    assert deploy_render.main(["--deploy-dir", str(tmp_path)]) == 0  # rewrite repairs it
    assert (tmp_path / STORAGE).read_text() == (DEPLOY_DIR / STORAGE).read_text()


def test_bucket_is_private_owner_enforced_encrypted_and_aborts_multipart(storage: dict[str, Any]) -> None:
    bucket = _props(storage, "Bucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["Fn::If"][0] == "UseKmsKey"
    assert sse["Fn::If"][1]["SSEAlgorithm"] == "aws:kms"
    assert sse["Fn::If"][2] == {"SSEAlgorithm": "AES256"}
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 1
    }


def test_notification_is_object_created_under_the_input_prefix_only(storage: dict[str, Any]) -> None:
    (entry,) = _props(storage, "Bucket")["NotificationConfiguration"]["QueueConfigurations"]
    assert entry["Event"] == "s3:ObjectCreated:*"
    assert entry["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": {"Ref": "InputPrefix"}}]
    params = storage["Parameters"]
    # the prefixes cannot be empty (an empty prefix would cover the thumbnails: the loop)
    for name in ("InputPrefix", "OutputPrefix"):
        assert not re.fullmatch(params[name]["AllowedPattern"], "")


def test_thumbx_role_sessions_are_capped_at_an_hour_and_trust_exact_roles(storage: dict[str, Any]) -> None:
    role = _props(storage, "ThumbXRole")
    assert role["MaxSessionDuration"] <= 3600
    trust = json.dumps(role["AssumeRolePolicyDocument"])
    assert ":root" not in trust
    assert '"*"' not in trust
    assert "role/${TaskRoleName}" in trust
    assert "role/${LambdaRoleName}" in trust
    assert "HasExternalId" in trust


def test_visibility_timeout_is_at_least_six_times_the_lambda_timeout(
    storage: dict[str, Any], compute: dict[str, Any]
) -> None:
    for template in (storage, compute):
        allowed = template["Parameters"]["LambdaTimeoutSeconds"]["AllowedValues"]
        mapping = template["Mappings"]["VisibilityTimeout"]
        assert sorted(mapping) == sorted(allowed)
        for timeout, row in mapping.items():
            assert row["Seconds"] >= 6 * int(timeout)
    assert storage["Mappings"] == compute["Mappings"]
    assert _props(compute, "Function")["Timeout"] == {"Ref": "LambdaTimeoutSeconds"}
    assert _props(compute, "Queue")["VisibilityTimeout"] == {
        "Fn::FindInMap": ["VisibilityTimeout", {"Ref": "LambdaTimeoutSeconds"}, "Seconds"]
    }


@pytest.mark.parametrize(
    ("template_name", "placement"), [(STORAGE, "QueueInStorage"), (COMPUTE, "QueueInCompute")]
)
def test_queue_has_a_dead_letter_queue_encryption_and_a_source_bound_policy(
    template_name: str, placement: str
) -> None:
    template = _load(template_name)
    queue = template["Resources"]["Queue"]
    assert queue["Condition"] == placement
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["DeadLetterQueue", "Arn"]
    }
    policy = json.dumps(_props(template, "QueuePolicy")["PolicyDocument"])
    assert '"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}"}' in policy
    assert '"aws:SourceAccount"' in policy


def test_worker_container_is_read_only_non_root_with_stop_timeout_and_health_check(
    compute: dict[str, Any],
) -> None:
    (container,) = _props(compute, "TaskDefinition")["ContainerDefinitions"]
    assert container["ReadonlyRootFilesystem"] is True
    assert container["User"].split(":")[0] not in {"0", "root"}
    assert container["StopTimeout"] == {"Ref": "StopTimeoutSeconds"}
    assert compute["Parameters"]["StopTimeoutSeconds"]["MaxValue"] <= 120  # Fargate's limit
    assert container["HealthCheck"]["Command"][0] == "CMD-SHELL"
    # every setting the template passes is one the worker reads
    config_source = Path(config.__file__).read_text()
    for variable in container["Environment"]:
        assert f'"{variable["Name"]}"' in config_source, variable["Name"]
    for name in _props(compute, "Function")["Environment"]["Variables"]:
        assert f'"{name}"' in config_source, name


def test_task_role_may_only_assume_thumbx_role(compute: dict[str, Any]) -> None:
    (policy,) = _props(compute, "TaskRole")["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    assert statements[0]["Action"] == ["sts:AssumeRole", "sts:SetSourceIdentity"]
    assert statements[0]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${StorageAccountId}:role/${ThumbXRoleName}"
    }
    assert [s["Fn::If"][0] for s in statements[1:]] == ["QueueInCompute", "QueueInCompute"]


def _dlq_senders(statements: list[Any]) -> dict[str, Any]:
    """condition -> resource of each conditional statement that allows sqs:SendMessage."""
    found = {}
    for statement in statements:
        condition, chosen, _ = statement.get("Fn::If", (None, statement, None))
        if "sqs:SendMessage" in chosen.get("Action", []):
            found[condition] = chosen["Resource"]
    return found


def test_permanent_failures_are_dead_lettered_by_whoever_reads_the_queue(
    storage: dict[str, Any], compute: dict[str, Any]
) -> None:
    # Without THUMBX_DLQ_URL a permanent failure waits maxReceiveCount visibility timeouts for the redrive
    # policy and reaches the DLQ without its reason; with it, the sender needs sqs:SendMessage on the DLQ.
    (container,) = _props(compute, "TaskDefinition")["ContainerDefinitions"]
    envs = {
        "task": {v["Name"]: v["Value"] for v in container["Environment"]},
        "lambda": _props(compute, "Function")["Environment"]["Variables"],
    }
    for env in envs.values():
        assert env["THUMBX_QUEUE_CREDENTIALS"] == {"Ref": "QueuePlacement"}  # storage | compute
        local, remote = env["THUMBX_DLQ_URL"]["Fn::If"][1:]
        assert env["THUMBX_DLQ_URL"]["Fn::If"][0] == "QueueInCompute"
        assert local == {"Ref": "DeadLetterQueue"}
        assert remote["Fn::Sub"].endswith("/${StorageAccountId}/${QueueName}-dlq")
    dlq = {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${QueueName}-dlq"}
    for role in ("TaskRole", "LambdaRole"):  # queue in A: base credentials send
        (policy,) = _props(compute, role)["Policies"]
        assert _dlq_senders(policy["PolicyDocument"]["Statement"]) == {"QueueInCompute": dlq}, role
    thumbx_role = _props(storage, "ThumbXRolePolicy")["PolicyDocument"]["Statement"]
    assert _dlq_senders(thumbx_role) == {"QueueInStorage": dlq}  # queue in B: ThumbXRole sends
    for template in (storage, compute):  # the DLQ's own name, as the queue's RedrivePolicy targets it
        assert _props(template, "DeadLetterQueue")["QueueName"] == {"Fn::Sub": "${QueueName}-dlq"}


def test_lambda_event_source_reports_partial_failures_with_bounded_concurrency(
    compute: dict[str, Any],
) -> None:
    mapping = _props(compute, "EventSourceMapping")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 10
    assert mapping["MaximumBatchingWindowInSeconds"] > 0
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "LambdaMaxConcurrency"}}
    assert _props(compute, "Function")["PackageType"] == "Image"


def test_autoscaling_tracks_backlog_per_task(compute: dict[str, Any]) -> None:
    spec = _props(compute, "BacklogPerTaskScaling")["TargetTrackingScalingPolicyConfiguration"]
    metrics = {m["Id"]: m for m in spec["CustomizedMetricSpecification"]["Metrics"]}
    assert metrics["backlog"]["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert metrics["tasks"]["MetricStat"]["Metric"]["MetricName"] == "RunningTaskCount"
    assert metrics["backlogPerTask"]["ReturnData"] is True
    assert "backlog /" in metrics["backlogPerTask"]["Expression"]


def test_cloudtrail_records_object_events_of_the_bucket_and_an_analyzer_exists(
    storage: dict[str, Any],
) -> None:
    selectors = _props(storage, "DataTrail")["AdvancedEventSelectors"]
    data = next(s for s in selectors if {"Field": "eventCategory", "Equals": ["Data"]} in s["FieldSelectors"])
    assert {"Field": "resources.type", "Equals": ["AWS::S3::Object"]} in data["FieldSelectors"]
    assert _props(storage, "DataTrail")["EnableLogFileValidation"] is True
    assert _props(storage, "AccessAnalyzer")["Type"] == "ACCOUNT"


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_checkov_skip_is_justified(name: str) -> None:
    template = _load(name)
    skips = [
        skip
        for resource in template["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"])
        assert len(skip.get("comment", "")) > 40, skip


def test_scan_variants_flip_defaults_so_every_conditional_resource_is_scanned(tmp_path: Path) -> None:
    written = deploy_render.write_scan_variants(DEPLOY_DIR, tmp_path)
    assert len(written) == len(deploy_render.SCAN_VARIANTS) * len(TEMPLATES)
    flipped, _ = decode_str((tmp_path / "queue-in-storage-kms" / STORAGE).read_text())
    assert flipped["Parameters"]["QueuePlacement"]["Default"] == "storage"
    assert flipped["Parameters"]["KmsEncryption"]["Default"] == "true"
