"""Writes the IAM documents of ``deploy/*.yaml`` from :mod:`worker.policies` (one source of truth).

The templates are hand-written CloudFormation except for blocks fenced by ``# BEGIN GENERATED <name>`` and
``# END GENERATED <name>`` comments; this module renders each block from the same functions that the
emulator provisioning and ``thumbx policies`` use, with CloudFormation substitutions (``${BucketName}``)
as arguments. Optional statements (external ID, KMS, queue placement) become ``Fn::If`` on a template
condition. ``python -m worker.deploy_render`` rewrites the blocks; ``--check`` fails when a committed
template is out of date.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from worker import policies
from worker.policies import DeploySpec, Policy, StorageScope

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"
TEMPLATES = ("storage-account.yaml", "compute-account.yaml")
_BLOCK = re.compile(
    r"^(?P<indent>[ ]*)# BEGIN GENERATED (?P<name>\S+)\n.*?^(?P=indent)# END GENERATED (?P=name)\n",
    re.MULTILINE | re.DOTALL,
)
_NO_VALUE = {"Ref": "AWS::NoValue"}

# CloudFormation spellings of the names the documents depend on.
_PARTITION = "${AWS::Partition}"
_COMPUTE_ROLE = "arn:${AWS::Partition}:iam::${ComputeAccountId}:role/"
_STORAGE_ADMIN = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AdminRoleName}"
_REMOTE_THUMBX_ROLE = "arn:${AWS::Partition}:iam::${StorageAccountId}:role/${ThumbXRoleName}"
_REMOTE_QUEUE = "arn:${AWS::Partition}:sqs:${AWS::Region}:${StorageAccountId}:${QueueName}"


def substitute(node: Any) -> Any:
    """Wraps every string that holds a ``${...}`` substitution in ``Fn::Sub``."""
    if isinstance(node, dict):
        return {key: substitute(value) for key, value in node.items()}
    if isinstance(node, list):
        return [substitute(item) for item in node]
    if isinstance(node, str) and "${" in node:
        return {"Fn::Sub": node}
    return node


def substitute_policy(document: Policy) -> Policy:
    return {key: substitute(value) for key, value in document.items()}


def with_conditions(base: Policy, variants: Sequence[tuple[str, Policy]]) -> Policy:
    """One document from a base and per-condition variants: statements that differ become ``Fn::If``.

    Statements are matched by ``Sid``; a statement a variant adds or changes is kept only when its
    condition holds (falling back to the base statement, or to nothing).
    """
    base_statements = {s["Sid"]: s for s in base["Statement"]}
    chosen: dict[str, Any] = {sid: substitute(s) for sid, s in base_statements.items()}
    decided: dict[str, str] = {}
    for condition, variant in variants:
        for statement in variant["Statement"]:
            sid = statement["Sid"]
            if base_statements.get(sid) == statement:
                continue
            if sid in decided and decided[sid] != condition:
                raise ValueError(f"statement {sid} depends on two conditions: {decided[sid]}, {condition}")
            decided[sid] = condition
            fallback = chosen.get(sid, _NO_VALUE)
            chosen[sid] = {"Fn::If": [condition, substitute(statement), fallback]}
    return {"Version": base["Version"], "Statement": list(chosen.values())}


def _storage_trust() -> Policy:
    principals = [f"{_COMPUTE_ROLE}${{TaskRoleName}}", f"{_COMPUTE_ROLE}${{LambdaRoleName}}"]
    return with_conditions(
        policies.trust_policy(principals),
        [("HasExternalId", policies.trust_policy(principals, "${ExternalId}"))],
    )


def _storage_permissions() -> Policy:
    scope = StorageScope(
        bucket="${BucketName}",
        input_prefix="${InputPrefix}",
        output_prefix="${OutputPrefix}",
        partition=_PARTITION,
    )
    variants = [
        ("QueueInStorage", replace(scope, queue_arn="${Queue.Arn}", dlq_arn="${DeadLetterQueue.Arn}")),
        ("UseKmsKey", replace(scope, kms_key_arn="${BucketKey.Arn}")),
    ]
    return with_conditions(
        policies.role_permission_policy(scope),
        [(name, policies.role_permission_policy(variant)) for name, variant in variants],
    )


def _bucket_policy() -> Policy:
    named = ["${ThumbXRole.Arn}", _STORAGE_ADMIN]
    return with_conditions(
        policies.bucket_policy("${BucketName}", named, partition=_PARTITION),
        [
            (
                "HasUploaderRole",
                policies.bucket_policy(
                    "${BucketName}",
                    [*named, "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${UploaderRoleName}"],
                    partition=_PARTITION,
                ),
            )
        ],
    )


def _storage_queue_policy() -> Policy:
    return substitute_policy(
        policies.queue_policy(
            "${Queue.Arn}",
            "${BucketName}",
            "${AWS::AccountId}",
            consumer_arns=[f"{_COMPUTE_ROLE}${{LambdaRoleName}}"],
            partition=_PARTITION,
        )
    )


def _kms_key_policy() -> Policy:
    return substitute_policy(
        policies.kms_key_policy(
            _STORAGE_ADMIN, ["${ThumbXRole.Arn}"], region="${AWS::Region}", partition=_PARTITION
        )
    )


def _trail_bucket_policy() -> Policy:
    trail = "arn:${AWS::Partition}:cloudtrail:${AWS::Region}:${AWS::AccountId}:trail/${AWS::StackName}-data"
    return substitute_policy(
        policies.trail_bucket_policy("${TrailBucket}", trail, "${AWS::AccountId}", partition=_PARTITION)
    )


# With the queue in A, A's roles read it and dead-letter to its DLQ with their own credentials
# (THUMBX_QUEUE_CREDENTIALS=base); with the queue in B, ThumbXRole does both (storage permissions above).
_LOCAL_QUEUE = policies.compute_identity_policy(
    _REMOTE_THUMBX_ROLE, queue_arn="${Queue.Arn}", dlq_arn="${DeadLetterQueue.Arn}"
)


def _task_role() -> Policy:
    return with_conditions(
        policies.compute_identity_policy(_REMOTE_THUMBX_ROLE), [("QueueInCompute", _LOCAL_QUEUE)]
    )


def _lambda_role() -> Policy:
    # The event source mapping polls with the function's role wherever the queue is.
    return with_conditions(
        policies.compute_identity_policy(_REMOTE_THUMBX_ROLE, queue_arn=_REMOTE_QUEUE),
        [("QueueInCompute", _LOCAL_QUEUE)],
    )


def _compute_queue_policy() -> Policy:
    return substitute_policy(
        policies.queue_policy("${Queue.Arn}", "${BucketName}", "${StorageAccountId}", partition=_PARTITION)
    )


def _service_trust(service: str) -> Callable[[], Policy]:
    def render() -> Policy:
        return substitute_policy(policies.service_trust_policy(service, "${AWS::AccountId}"))

    return render


BLOCKS: dict[str, Callable[[], Policy]] = {
    "storage/ThumbXRole/trust": _storage_trust,
    "storage/ThumbXRole/permissions": _storage_permissions,
    "storage/bucket-policy": _bucket_policy,
    "storage/queue-policy": _storage_queue_policy,
    "storage/kms-key-policy": _kms_key_policy,
    "storage/trail-bucket-policy": _trail_bucket_policy,
    "compute/task-role/trust": _service_trust("ecs-tasks.amazonaws.com"),
    "compute/task-role/permissions": _task_role,
    "compute/execution-role/trust": _service_trust("ecs-tasks.amazonaws.com"),
    "compute/lambda-role/trust": _service_trust("lambda.amazonaws.com"),
    "compute/lambda-role/permissions": _lambda_role,
    "compute/queue-policy": _compute_queue_policy,
}


class _PlainDumper(yaml.SafeDumper):
    """No anchors/aliases: CloudFormation rejects YAML aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_block(name: str, indent: str) -> str:
    try:
        document = BLOCKS[name]()
    except KeyError:
        raise ValueError(f"unknown generated block {name!r}; known: {', '.join(BLOCKS)}") from None
    body = yaml.dump(document, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False, width=120)
    lines = [f"{indent}# BEGIN GENERATED {name} (python -m worker.deploy_render; do not edit)"]
    lines.extend(f"{indent}{line}" for line in body.splitlines())
    lines.append(f"{indent}# END GENERATED {name}")
    return "\n".join(lines) + "\n"


def render_template(text: str) -> str:
    """``text`` with every generated block rewritten from :mod:`worker.policies`."""
    fixed = re.sub(r"(# BEGIN GENERATED \S+) \(.*\)\n", r"\1\n", text)
    return _BLOCK.sub(lambda m: render_block(m.group("name"), m.group("indent")), fixed)


# Parameter defaults flipped so that static scanners (which drop resources whose condition is false under
# the defaults) see every conditional resource at least once.
SCAN_VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "queue-in-storage-kms": {
        "QueuePlacement": "storage",
        "KmsEncryption": '"true"',
        "Versioning": '"true"',
        "ExternalId": "example-external-id",
        "UploaderRoleName": "ThumbXUploaderRole",
    },
}


def with_defaults(text: str, defaults: dict[str, str]) -> str:
    """``text`` with the ``Default:`` of the named parameters replaced (text-level, keeps the tags)."""
    for name, value in defaults.items():
        pattern = re.compile(rf"(^  {name}:\n(?:    .*\n)*?    Default: ).*$", re.MULTILINE)
        text, count = pattern.subn(lambda m: m.group(1) + value, text, count=1)  # noqa: B023
        if count != 1:
            raise ValueError(f"parameter {name} has no Default to replace")
    return text


def write_scan_variants(deploy_dir: Path, out_dir: Path) -> list[Path]:
    written = []
    for variant, defaults in SCAN_VARIANTS.items():
        target = out_dir / variant
        target.mkdir(parents=True, exist_ok=True)
        for name in TEMPLATES:
            text = (deploy_dir / name).read_text(encoding="utf-8")
            applicable = {k: v for k, v in defaults.items() if re.search(rf"^  {k}:$", text, re.MULTILINE)}
            (target / name).write_text(with_defaults(text, applicable), encoding="utf-8")
            written.append(target / name)
    return written


def example_documents() -> dict[str, Policy]:
    """The documents of both queue placements with example accounts (what parliament audits)."""
    documents: dict[str, Policy] = {}
    for queue_in in ("storage", "compute"):
        spec = DeploySpec(
            account_a="111111111111",
            account_b="222222222222",
            external_id="example-external-id",
            queue_in=queue_in,
            kms_key_arn="arn:aws:kms:us-east-1:222222222222:key/00000000-0000-0000-0000-000000000000",
        )
        for name, document in policies.render_all(spec).items():
            documents[f"queue-in-{queue_in}/{name}"] = document
    return documents


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.deploy_render", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a template is out of date")
    parser.add_argument("--deploy-dir", type=Path, default=DEPLOY_DIR)
    parser.add_argument(
        "--identity-dir", type=Path, help="also write the example identity policies there (for parliament)"
    )
    parser.add_argument(
        "--scan-dir", type=Path, help="also write template variants covering every condition there"
    )
    args = parser.parse_args(argv)
    stale = 0
    for name in TEMPLATES:
        path: Path = args.deploy_dir / name
        text = path.read_text(encoding="utf-8")
        rendered = render_template(text)
        if rendered == text:
            continue
        if args.check:
            stale += 1
            sys.stdout.writelines(
                difflib.unified_diff(text.splitlines(True), rendered.splitlines(True), str(path), "rendered")
            )
        else:
            path.write_text(rendered, encoding="utf-8")
            print(f"rewrote {path}")
    if args.identity_dir is not None:
        args.identity_dir.mkdir(parents=True, exist_ok=True)
        for name, document in example_documents().items():
            if name.split("/", 1)[1] in policies.IDENTITY_DOCUMENTS:
                target = args.identity_dir / (name.replace("/", "_") + ".json")
                target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if args.scan_dir is not None:
        write_scan_variants(args.deploy_dir, args.scan_dir)
    if stale:
        print(f"{stale} template(s) out of date: run python -m worker.deploy_render", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
