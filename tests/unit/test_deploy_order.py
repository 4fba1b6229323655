"""The documented deploy completes: `make deploy` (dry run) walked step by step through both templates.

Each step is one `aws cloudformation deploy` that `make -n deploy` prints. For every resource the step
would create, the walk asks what must already exist when CloudFormation creates it — the roles a trust,
key or queue policy names (IAM, KMS and SQS refuse unknown principals), the queue a bucket notification
targets and a policy on it admitting S3 for this bucket (S3 test-sends), the queue an event source mapping
polls (and, across accounts, a policy admitting the function's role), and for a service that starts tasks
the role the tasks assume (trusting their task role) and their queues. A need is met by an earlier step,
by a role that exists before the deploy (the admin and optional roles in B), or by a resource of the same
stack that the needing resource depends on (Ref, GetAtt, Sub, DependsOn), so CloudFormation creates it
first. Anything else fails the test, naming the step that creates it too late.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.cfn_eval import Stack, load
from tools.deploy_render import DEPLOY_DIR

ROOT = DEPLOY_DIR.parent
A, B, REGION = "111111111111", "222222222222", "eu-west-1"
MAKE_VARS = {
    "COMPUTE_ACCOUNT": A,
    "STORAGE_ACCOUNT": B,
    "REGION": REGION,
    "BUCKET": "photos-prod",
    "ADMIN_ROLE": "Ops",
    "WORKER_IMAGE": "repo/thumbx:1",
    "LAMBDA_IMAGE": "repo/thumbx:1-lambda",
    "VPC_ID": "vpc-1",
    "SUBNET_IDS": "subnet-1,subnet-2",
    "EXTERNAL_ID": "ext-7",
    "COMPUTE_PROFILE": "a",
    "STORAGE_PROFILE": "b",
}
PREEXISTING_ROLE_PARAMETERS = ("AdminRoleName", "UploaderRoleName", "BackfillRoleName", "BreakGlassRoleName")
Fact = tuple[str, ...]


@dataclass(frozen=True)
class Step:
    template: str  # "compute" or "storage"
    parameters: dict[str, str]
    stack_name: str
    region: str
    edited: Stack | None = None  # a stack a test changed

    @property
    def account(self) -> str:
        return A if self.template == "compute" else B

    def label(self, index: int) -> str:
        stage = self.parameters.get("DeployStage", "")
        return f"step {index + 1} ({self.template}{' ' + stage if stage else ''})"

    def stack(self) -> Stack:
        if self.edited is not None:
            return self.edited
        path = DEPLOY_DIR / f"{self.template}-account.yaml"
        return Stack(load(path), self.parameters, self.account, self.region, self.stack_name)


def make_steps(**variables: str) -> list[Step]:
    """The `aws cloudformation deploy` commands `make -n deploy` prints, in order."""
    args = [f"{k}={v}" for k, v in {**MAKE_VARS, **variables}.items()]
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "deploy", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    steps = []
    for line in out.splitlines():
        words = shlex.split(line)
        if words[:3] != ["aws", "cloudformation", "deploy"]:
            continue
        options: dict[str, list[str]] = {}
        for word in words[3:]:
            if word.startswith("--"):
                options[word] = []
                current = options[word]
            else:
                current.append(word)
        template = Path(options["--template-file"][0]).name.split("-", 1)[0]
        parameters = dict(item.split("=", 1) for item in options["--parameter-overrides"])
        steps.append(Step(template, parameters, options["--stack-name"][0], options["--region"][0]))
    return steps


def _principals(document: Any) -> list[str]:
    found: list[str] = []
    for statement in document.get("Statement", []):
        principal = statement.get("Principal")
        if isinstance(principal, dict):
            aws = principal.get("AWS", [])
            found += [aws] if isinstance(aws, str) else aws
    return [p for p in found if not p.endswith(":root")]


def _queue_arn(url: str) -> str:
    match = re.fullmatch(r"https://sqs\.([a-z0-9-]+)\.amazonaws\.com/(\d{12})/(.+)", url)
    assert match, url
    region, account, name = match.groups()
    return f"arn:aws:sqs:{region}:{account}:{name}"


def needs_and_provides(stack: Stack, logical: str) -> tuple[list[Fact], list[Fact]]:
    resource = stack.template["Resources"][logical]
    kind = resource["Type"]
    props, _ = stack.properties(logical)
    needs: list[Fact] = []
    provides: list[Fact] = []
    if kind == "AWS::IAM::Role":
        arn = stack.physical(logical, "Arn")
        trusted = _principals(props["AssumeRolePolicyDocument"])
        needs += [("role", p) for p in trusted]
        provides += [("role", arn), *(("trusts", arn, p) for p in trusted)]
    elif kind == "AWS::KMS::Key":
        needs += [("role", p) for p in _principals(props["KeyPolicy"])]
    elif kind in ("AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy"):
        needs += [("role", p) for p in _principals(props["PolicyDocument"])]
        if kind == "AWS::SQS::QueuePolicy":
            for url in props["Queues"]:
                queue = _queue_arn(url)
                for statement in props["PolicyDocument"]["Statement"]:
                    if statement["Effect"] != "Allow":
                        continue
                    if statement["Principal"] == {"Service": "s3.amazonaws.com"}:
                        source = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
                        provides.append(("queue-admits-s3", queue, source))
                    provides += [("queue-admits", queue, p) for p in _principals({"Statement": [statement]})]
    elif kind == "AWS::SQS::Queue":
        provides.append(("queue", stack.physical(logical, "Arn")))
    elif kind == "AWS::S3::Bucket":
        bucket = f"arn:aws:s3:::{props['BucketName']}"
        for entry in props.get("NotificationConfiguration", {}).get("QueueConfigurations", []):
            needs += [("queue", entry["Queue"]), ("queue-admits-s3", entry["Queue"], bucket)]
    elif kind == "AWS::Lambda::EventSourceMapping":
        queue = props["EventSourceArn"]
        needs.append(("queue", queue))
        function = next(k for k in stack.active() if stack.physical(k) == props["FunctionName"])
        role = stack.properties(function)[0]["Role"]
        if queue.split(":")[4] != stack.account:
            needs.append(("queue-admits", queue, role))
    elif kind == "AWS::ECS::Service" and int(props["DesiredCount"]) > 0:
        definition = next(k for k in stack.active() if stack.physical(k) == props["TaskDefinition"])
        task = stack.properties(definition)[0]
        for container in task["ContainerDefinitions"]:
            env = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
            if env.get("THUMBX_ROLE_ARN"):  # tasks assume it at start and exit when they cannot
                needs += [
                    ("role", env["THUMBX_ROLE_ARN"]),
                    ("trusts", env["THUMBX_ROLE_ARN"], task["TaskRoleArn"]),
                ]
            needs += [
                ("queue", _queue_arn(env[k])) for k in ("THUMBX_QUEUE_URL", "THUMBX_DLQ_URL") if env.get(k)
            ]
    return needs, provides


def _closure(stack: Stack, logical: str, active: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = [logical]
    while todo:
        for ref in stack.properties(todo.pop())[1]:
            if ref in active and ref not in seen:
                seen.add(ref)
                todo.append(ref)
    return seen


def walk(steps: list[Step]) -> list[str]:
    """Every need no earlier step, no pre-existing role and no awaited resource of the same stack meets."""
    world: set[Fact] = set()
    for step in steps:
        for key in PREEXISTING_ROLE_PARAMETERS:
            if step.template == "storage" and step.parameters.get(key):
                world.add(("role", f"arn:aws:iam::{B}:role/{step.parameters[key]}"))
    stacks = [step.stack() for step in steps]
    effects = [
        {logical: needs_and_provides(stack, logical) for logical in stack.active()} for stack in stacks
    ]
    problems = []
    for index, (step, stack) in enumerate(zip(steps, stacks, strict=True)):
        active = set(effects[index])
        for logical, (needs, _) in effects[index].items():
            awaited = _closure(stack, logical, active)
            for need in needs:
                if need in world:
                    continue
                local = [other for other, (_, gives) in effects[index].items() if need in gives]
                if local and set(local) & awaited:
                    continue
                later = [
                    steps[i].label(i)
                    for i in range(index + 1, len(steps))
                    if any(need in gives for _, gives in effects[i].values())
                ]
                why = f"created later by {later[0]}" if later else "created by no step"
                if local:
                    why = f"created in the same stack by {', '.join(local)} without a dependency on it"
                problems.append(f"{step.label(index)}: {logical} needs {need}: {why}")
        for _, gives in effects[index].values():
            world.update(gives)
    return problems


@pytest.mark.parametrize("placement", ["compute", "storage"])
@pytest.mark.parametrize("kms", ["false", "true"])
def test_the_documented_sequence_completes(placement: str, kms: str) -> None:
    steps = make_steps(
        QUEUE_PLACEMENT=placement,
        KMS_ENCRYPTION=kms,
        STORAGE_PARAMS="UploaderRoleName=Uploads BreakGlassRoleName=Glass",
    )
    assert [(s.template, s.parameters.get("DeployStage")) for s in steps] == [
        ("compute", "bootstrap"),
        ("storage", None),
        ("compute", "complete"),
    ]
    assert {s.parameters["QueuePlacement"] for s in steps} == {placement}
    assert walk(steps) == []


@pytest.mark.parametrize("placement", ["compute", "storage"])
def test_the_old_order_is_refused(placement: str) -> None:
    bootstrap, storage, complete = make_steps(QUEUE_PLACEMENT=placement)
    problems = walk([complete, storage])  # "deploy A first, then B" as the templates used to say
    thumbx_role = f"arn:aws:iam::{B}:role/ThumbXRole"
    later = "created later by step 2 (storage)"
    assert f"step 1 (compute complete): Service needs ('role', '{thumbx_role}'): {later}" in problems
    if placement == "storage":
        queue = f"arn:aws:sqs:{REGION}:{B}:thumbx-events"
        assert (
            f"step 1 (compute complete): EventSourceMapping needs ('queue', '{queue}'): {later}" in problems
        )
    reversed_order = walk([storage, bootstrap, complete])  # B first: its trust names roles not yet there
    task_role = f"arn:aws:iam::{A}:role/ThumbXWorkerTaskRole"
    later = "created later by step 2 (compute bootstrap)"
    assert f"step 1 (storage): ThumbXRole needs ('role', '{task_role}'): {later}" in reversed_order


def test_a_same_stack_need_without_a_dependency_is_caught() -> None:
    _, storage, _ = make_steps(KMS_ENCRYPTION="true")
    stack = storage.stack()
    del stack.template["Resources"]["BucketKey"]["DependsOn"]  # the key policy names ThumbXRole by ARN
    problems = walk([make_steps(KMS_ENCRYPTION="true")[0], replace(storage, edited=stack)])
    assert any("BucketKey needs ('role'" in p and "without a dependency" in p for p in problems), problems


def test_the_deploy_guide_documents_exactly_this_sequence() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^deploy:\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe
    targets = re.findall(r"\$\(MAKE\) --no-print-directory (\S+)", recipe.group(1))
    assert targets == ["deploy-compute-bootstrap", "deploy-storage", "deploy-compute"]
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- deploy sequence.*?-->\n```\n(.*?)```", guide, re.DOTALL)
    assert block, "docs/deploy.md lost its deploy sequence block"
    commands = [
        line.split("#")[0].strip() for line in block.group(1).splitlines() if line.startswith("make ")
    ]
    assert commands == [f"make {t} DEPLOY_VARS=my-deploy.mk" for t in targets]
