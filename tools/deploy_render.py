"""Writes the IAM documents of ``deploy/*.yaml`` from :func:`worker.ops.deploy_spec.render_all`.

The templates are hand-written CloudFormation except for blocks fenced by ``# BEGIN GENERATED <name>`` and
``# END GENERATED <name>`` comments. Each block is the document ``render_all`` returns under that name,
rendered with CloudFormation substitutions (``${BucketName}``) as the names, once for every combination of
the template's conditions (external ID, KMS, queue placement, optional roles); the variants are folded
into one document in which whatever differs becomes ``Fn::If`` on the condition it depends on (absent
parts become ``AWS::NoValue``). ``python -m tools.deploy_render`` rewrites the blocks; ``--check`` fails
when a committed template is out of date.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import json
import re
import sys
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError as exc:  # repo tooling: the plain install (service image, Lambda package) has no PyYAML
    raise SystemExit(
        "tools.deploy_render needs PyYAML, which is not installed: pip install 'thumbx[dev]'"
    ) from exc

from worker.ops.deploy_spec import IDENTITY_DOCUMENTS, DeploySpec, render_all
from worker.ops.policies import Policy

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"
TEMPLATES = ("storage-account.yaml", "compute-account.yaml")
_BLOCK = re.compile(
    r"^(?P<indent>[ ]*)# BEGIN GENERATED (?P<name>\S+)\n.*?^(?P=indent)# END GENERATED (?P=name)\n",
    re.MULTILINE | re.DOTALL,
)
_NO_VALUE = {"Ref": "AWS::NoValue"}
Combo = Mapping[str, bool]


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def _names(account_a: str, account_b: str, **overrides: Any) -> dict[str, Any]:
    return {
        "account_a": account_a,
        "account_b": account_b,
        "bucket": "${BucketName}",
        "admin_role_name": "${AdminRoleName}",
        "region": "${AWS::Region}",
        "queue_name": "${QueueName}",
        "role_name": "${ThumbXRoleName}",
        "task_role_name": "${TaskRoleName}",
        "lambda_role_name": "${LambdaRoleName}",
        "input_prefix": "${InputPrefix}",
        "output_prefix": "${OutputPrefix}",
        "storage_stack": "${AWS::StackName}",
        "partition": "${AWS::Partition}",
        **overrides,
    }


def _storage_spec(c: Combo) -> DeploySpec:
    return DeploySpec(
        **_names(
            "${ComputeAccountId}",
            "${AWS::AccountId}",
            external_id="${ExternalId}" if c["HasExternalId"] else None,
            queue_in="storage" if c["QueueInStorage"] else "compute",
            kms_key_arn="${BucketKey.Arn}" if c["UseKmsKey"] else None,
            uploader_role_name="${UploaderRoleName}" if c["HasUploaderRole"] else None,
            backfill_role_name="${BackfillRoleName}" if c["HasBackfillRole"] else None,
            break_glass_role_name="${BreakGlassRoleName}" if c["HasBreakGlassRole"] else None,
        )
    )


def _compute_spec(c: Combo) -> DeploySpec:
    return DeploySpec(
        **_names(
            "${AWS::AccountId}",
            "${StorageAccountId}",
            queue_in="compute" if c["QueueInCompute"] else "storage",
        )
    )


# Per template: its conditions (in the order Fn::If nests them) and the spec each combination renders.
TEMPLATE_CONDITIONS: dict[str, tuple[tuple[str, ...], Callable[[Combo], DeploySpec]]] = {
    "storage": (
        (
            "QueueInStorage",
            "UseKmsKey",
            "HasExternalId",
            "HasUploaderRole",
            "HasBackfillRole",
            "HasBreakGlassRole",
        ),
        _storage_spec,
    ),
    "compute": (("QueueInCompute",), _compute_spec),
}


def substitute(node: Any) -> Any:
    """Wraps every string that holds a ``${...}`` substitution in ``Fn::Sub``."""
    if isinstance(node, dict):
        return {key: substitute(value) for key, value in node.items()}
    if isinstance(node, list):
        return [substitute(item) for item in node]
    if isinstance(node, str) and "${" in node:
        return {"Fn::Sub": node}
    return node


Variants = list[tuple[Combo, Any]]


def fold(variants: Variants, conditions: Sequence[str]) -> Any:
    """One CloudFormation value from per-combination values: equal parts stay, differing parts become
    ``Fn::If`` on a condition they depend on. Returns ``ABSENT`` where no combination has a value."""
    values = [value for _, value in variants]
    if all(value == values[0] for value in values[1:]) or all(v is ABSENT for v in values):
        return ABSENT if values[0] is ABSENT else substitute(values[0])
    if all(isinstance(v, dict) for v in values):
        keys = _union([list(v) for v in values])
        folded = {key: fold([(c, v.get(key, ABSENT)) for c, v in variants], conditions) for key in keys}
        return {key: value for key, value in folded.items() if value is not ABSENT}
    if all(isinstance(v, list) for v in values) and all(_keyable(v) for v in values):
        keys = _union([[_key(item) for item in v] for v in values])
        items = []
        for key in keys:
            item = fold([(c, _by_key(v).get(key, ABSENT)) for c, v in variants], conditions)
            if item is not ABSENT:
                items.append(item)
        return items
    condition = next((c for c in conditions if _depends_on(variants, c)), None) or next(
        c for c in conditions if len({combo[c] for combo, _ in variants}) == 2
    )
    branches = [
        fold([(c, v) for c, v in variants if c[condition] is flag], conditions) for flag in (True, False)
    ]
    if all(branch is ABSENT for branch in branches):
        return ABSENT
    return {"Fn::If": [condition, *(_NO_VALUE if b is ABSENT else b for b in branches)]}


def _keyable(items: list[Any]) -> bool:
    return all(isinstance(i, (str, int, bool)) or (isinstance(i, dict) and "Sid" in i) for i in items)


def _key(item: Any) -> Hashable:
    return ("sid", item["Sid"]) if isinstance(item, dict) else ("value", item)


def _by_key(items: list[Any]) -> dict[Hashable, Any]:
    return {_key(item): item for item in items}


def _union(orders: list[list[Hashable]]) -> list[Hashable]:
    """Every key once, each after the key it follows in the first (longest) list that has it."""
    merged: list[Hashable] = []
    for order in sorted(orders, key=len, reverse=True):
        for i, key in enumerate(order):
            if key in merged:
                continue
            before = next((k for k in reversed(order[:i]) if k in merged), None)
            merged.insert(0 if before is None else merged.index(before) + 1, key)
    return merged


def _depends_on(variants: Variants, condition: str) -> bool:
    """True when two combinations that differ only in ``condition`` have different values."""
    by_rest: dict[tuple[tuple[str, bool], ...], dict[bool, Any]] = {}
    for combo, value in variants:
        rest = tuple(sorted((k, v) for k, v in combo.items() if k != condition))
        by_rest.setdefault(rest, {})[combo[condition]] = value
    return any(len(pair) == 2 and pair[True] != pair[False] for pair in by_rest.values())


def template_document(template: str, name: str) -> Policy:
    """The document ``name`` as the ``template`` ("storage" / "compute") carries it."""
    conditions, spec_for = TEMPLATE_CONDITIONS[template]
    variants: Variants = []
    for flags in itertools.product((True, False), repeat=len(conditions)):
        combo = dict(zip(conditions, flags, strict=True))
        document = render_all(spec_for(combo)).get(name)
        if document is not None:  # a document exists only where its resource does (same condition)
            variants.append((combo, document))
    if not variants:
        raise ValueError(f"{template} template has no document {name!r}")
    document = fold(variants, conditions)
    if not isinstance(document, dict):
        raise ValueError(f"{template} document {name!r} is not one mapping")
    return document


class _PlainDumper(yaml.SafeDumper):
    """No anchors/aliases: CloudFormation rejects YAML aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_block(name: str, indent: str) -> str:
    template = name.split("/", 1)[0]
    if template not in TEMPLATE_CONDITIONS:
        raise ValueError(f"generated block {name!r} must start with storage/ or compute/")
    document = template_document(template, name)
    body = yaml.dump(document, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False, width=120)
    lines = [f"{indent}# BEGIN GENERATED {name} (python -m tools.deploy_render; do not edit)"]
    lines.extend(f"{indent}{line}" for line in body.splitlines())
    lines.append(f"{indent}# END GENERATED {name}")
    return "\n".join(lines) + "\n"


def _unmarked(text: str) -> str:
    return re.sub(r"(# BEGIN GENERATED \S+) \(.*\)\n", r"\1\n", text)


def render_template(text: str) -> str:
    """``text`` with every generated block rewritten from :func:`worker.ops.deploy_spec.render_all`."""
    return _BLOCK.sub(lambda m: render_block(m.group("name"), m.group("indent")), _unmarked(text))


def generated_blocks(text: str) -> list[str]:
    return [m.group("name") for m in _BLOCK.finditer(_unmarked(text))]


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
        "BackfillRoleName": "ThumbXBackfillRole",
        "BreakGlassRoleName": "ThumbXBreakGlassRole",
    },
    "bootstrap": {"DeployStage": "bootstrap"},
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
            bucket="thumbx-example",
            admin_role_name="ThumbXAdminRole",
            region="us-east-1",
            external_id="example-external-id",
            queue_in=queue_in,
            kms_key_arn="arn:aws:kms:us-east-1:222222222222:key/00000000-0000-0000-0000-000000000000",
        )
        for name, document in render_all(spec).items():
            documents[f"queue-in-{queue_in}/{name}"] = document
    return documents


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy_render", description=__doc__)
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
            if name.split("/", 1)[1] in IDENTITY_DOCUMENTS:
                target = args.identity_dir / (name.replace("/", "_") + ".json")
                target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if args.scan_dir is not None:
        write_scan_variants(args.deploy_dir, args.scan_dir)
    if stale:
        print(f"{stale} template(s) out of date: run python -m tools.deploy_render", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
