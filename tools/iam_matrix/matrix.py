"""thumbx's access matrix (pure): who may do what, as requests with the decision least privilege demands.

Each scenario is one deployment (queue placement x KMS); its documents come from
:func:`worker.ops.deploy_spec.render_all`, which ``tests/unit/test_deploy_documents.py`` proves equal to
what the templates carry. Principals other than thumbx's own get deliberately broad identity policies (an
admin with ``*``, a data scientist in B with ``s3:*``/``kms:*``/``sqs:*``, an intruder with ``*``): the
resource policies must stop them, not their good manners. ``seed_documents`` puts the seed's documents in
thumbx's place, so the same matrix shows what they get wrong.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.ops.backfill_policy import backfill_operator_policy
from worker.ops.deploy_spec import DeploySpec, render_all
from worker.ops.perimeter import analyzer_role_arn
from worker.ops.policies import VERSION, Policy, StorageScope

A, B, C = "111111111111", "222222222222", "333333333333"
REGION = "us-east-1"
BUCKET = "thumbx-photos"
EXTERNAL_ID = "ext-7f3a9c"
KMS_KEY = f"arn:aws:kms:{REGION}:{B}:key/2f1e0d9c-8b7a-4c6d-9e5f-0a1b2c3d4e5f"
SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "000_f5b770d453ff51a5.txt"
ROLES = {  # name -> (account, role name)
    "task role": (A, "ThumbXWorkerTaskRole"),
    "Lambda role": (A, "ThumbXLambdaRole"),
    "execution role": (A, "ThumbXExecutionRole"),
    "other role in A": (A, "OtherAppRole"),
    "ThumbXRole": (B, "ThumbXRole"),
    "admin": (B, "ThumbXAdminRole"),
    "break-glass": (B, "ThumbXBreakGlassRole"),
    "uploader": (B, "ThumbXUploaderRole"),
    "backfill": (B, "ThumbXBackfillRole"),
    "stranger in B": (B, "DataScientistRole"),
    "intruder in C": (C, "IntruderRole"),
}


def _allow(*actions: str) -> Policy:
    return {"Version": VERSION, "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}


@dataclass(frozen=True)
class Scenario:
    queue_in: str
    kms: bool

    @property
    def name(self) -> str:
        return f"queue-in-{self.queue_in}{'-kms' if self.kms else ''}"

    @property
    def spec(self) -> DeploySpec:
        return DeploySpec(
            account_a=A,
            account_b=B,
            bucket=BUCKET,
            admin_role_name="ThumbXAdminRole",
            region=REGION,
            external_id=EXTERNAL_ID,
            queue_in=self.queue_in,
            uploader_role_name="ThumbXUploaderRole",
            backfill_role_name="ThumbXBackfillRole",
            break_glass_role_name="ThumbXBreakGlassRole",
            kms_key_arn=KMS_KEY if self.kms else None,
        )


SCENARIOS = tuple(Scenario(q, k) for q in ("compute", "storage") for k in (False, True))


@dataclass
class Documents:
    """The policies the matrix evaluates: resource policies by resource, identity policies by role."""

    resource: dict[str, Policy | None]
    identity: dict[str, list[Policy]]


def thumbx_documents(scenario: Scenario) -> Documents:
    spec = scenario.spec
    docs = render_all(spec)
    q = spec.queue_in
    backfill = backfill_operator_policy(StorageScope(bucket=BUCKET), spec.queue_arn)
    return Documents(
        resource={
            "trust": docs["storage/ThumbXRole/trust"],
            "bucket": docs["storage/bucket-policy"],
            "queue": docs[f"{q}/queue-policy"],
            "dlq": docs[f"{q}/dlq-policy"],
            "key": docs.get("storage/kms-key-policy"),
        },
        identity={
            "task role": [docs["compute/task-role/permissions"]],
            "Lambda role": [docs["compute/lambda-role/permissions"]],
            "ThumbXRole": [docs["storage/ThumbXRole/permissions"]],
            "execution role": [_allow("ecr:*", "logs:*", "sts:AssumeRole")],
            "other role in A": [_allow("*")],
            "admin": [_allow("*")],
            "break-glass": [_allow("*")],
            "uploader": [_allow("s3:*", "kms:*")],
            "backfill": [backfill],
            "stranger in B": [_allow("s3:*", "kms:*", "sqs:*", "sts:AssumeRole")],
            "intruder in C": [_allow("*")],
            "Access Analyzer": [_allow("s3:GetBucket*", "s3:ListAllMyBuckets")],
        },
    )


def _json_blocks(text: str) -> list[Any]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.DOTALL)]


def seed_documents(scenario: Scenario, seed_text: str) -> Documents:
    """The seed's trust, permission and Lambda-role documents in thumbx's places (its role and bucket names
    mapped onto the matrix's); everything the seed does not have is absent."""
    trust, permission, lambda_role = _json_blocks(seed_text)[:3]

    def renamed(node: Any) -> Any:
        text = json.dumps(node).replace("AccountA-LambdaRole", "ThumbXLambdaRole")
        return json.loads(text.replace("account-b-thumb-bucket", BUCKET))

    def document(fragment: Any) -> Policy:
        fragment = renamed(fragment)
        return fragment if "Statement" in fragment else {"Version": VERSION, "Statement": [fragment]}

    ours = thumbx_documents(scenario)
    return Documents(
        resource={"trust": document(trust), "bucket": None, "queue": None, "dlq": None, "key": None},
        identity={
            **ours.identity,
            "task role": [],  # the seed has no ECS worker
            "Lambda role": [document(lambda_role)],
            "ThumbXRole": [document(permission)],
        },
    )


@dataclass(frozen=True)
class Request:
    id: str
    group: str
    who: str
    what: str
    actions: tuple[str, ...]
    resource: str
    account: str
    policy: str | None  # which resource policy applies: trust, bucket, queue, dlq, key
    allowed: bool
    context: dict[str, Any] = field(default_factory=dict)
    session: str = "thumbx-worker-8f0e1c2d"

    def principal(self) -> tuple[str, dict[str, Any]]:
        """The request's principal and the context keys AWS derives from it."""
        if self.who == "S3":
            return "s3.amazonaws.com", {}
        if self.who == "Access Analyzer":
            session = f"arn:aws:sts::{B}:assumed-role/AWSServiceRoleForAccessAnalyzer/access-analyzer"
            return session, {"aws:PrincipalArn": analyzer_role_arn(B), "aws:PrincipalAccount": B}
        if self.who == "root of A":
            root = f"arn:aws:iam::{A}:root"
            return root, {"aws:PrincipalArn": root, "aws:PrincipalAccount": A}
        account, name = ROLES[self.who]
        session = f"arn:aws:sts::{account}:assumed-role/{name}/{self.session}"
        return session, {
            "aws:PrincipalArn": f"arn:aws:iam::{account}:role/{name}",
            "aws:PrincipalAccount": account,
        }

    def simulations(self, docs: Documents) -> list[dict[str, Any]]:
        principal, derived = self.principal()
        context = {"aws:SecureTransport": "true", **derived, **self.context}
        context = {k: v for k, v in context.items() if v is not None}

        def keys_for(action: str) -> dict[str, Any]:
            # one AssumeRole call is authorised twice; SetSourceIdentity knows only sts:SourceIdentity
            if action != "sts:SetSourceIdentity":
                return context
            return {k: v for k, v in context.items() if not k.startswith("sts:") or k == "sts:SourceIdentity"}

        identity = [] if self.who == "S3" else docs.identity.get(self.who, [_allow("*")])
        return [
            {
                "principal": principal,
                "action": action,
                "resource": self.resource,
                "accountId": self.account,
                "context": keys_for(action),
                "identityPolicies": copy.deepcopy(identity),
                "resourcePolicy": docs.resource.get(self.policy) if self.policy else None,
            }
            for action in self.actions
        ]
