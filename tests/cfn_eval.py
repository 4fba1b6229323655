"""A small CloudFormation evaluator for tests: a template + parameter values -> the resources that would be
created, their properties with every intrinsic resolved, and what each resource references.

Enough of CloudFormation for thumbx's two templates: Ref, Fn::Sub (both forms), Fn::GetAtt, Fn::If,
Fn::Join, Fn::FindInMap, Fn::Select, conditions (Equals/Not/And/Or/Condition) and AWS::NoValue. Physical
names follow the resource's own name property (RoleName, QueueName, ...) so ARNs built from parameters and
ARNs read from resources compare equal; anything unnamed gets ``<stack>-<LogicalId>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str

_NO_VALUE = object()
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


def load(path: Path) -> dict[str, Any]:
    template, problems = decode_str(path.read_text(encoding="utf-8"))
    assert not problems, problems
    plain: dict[str, Any] = json.loads(json.dumps(template))
    return plain


@dataclass
class Stack:
    template: dict[str, Any]
    parameters: dict[str, str]
    account: str
    region: str = "us-east-1"
    name: str = "stack"
    partition: str = "aws"
    conditions: dict[str, bool] = field(init=False)
    values: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        declared = self.template.get("Parameters", {})
        unknown = set(self.parameters) - set(declared)
        assert not unknown, f"unknown parameters {sorted(unknown)}"
        self.values = {}
        for key, spec in declared.items():
            if key in self.parameters:
                value: Any = self.parameters[key]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise KeyError(f"parameter {key} has no value and no default")
            value = str(value)
            if spec["Type"].startswith("List<") or spec["Type"] == "CommaDelimitedList":
                value = value.split(",") if value else []
            if "AllowedValues" in spec:
                assert value in [str(v) for v in spec["AllowedValues"]], (key, value)
            if "AllowedPattern" in spec and isinstance(value, str):
                assert re.fullmatch(spec["AllowedPattern"], value), (key, value)
            self.values[key] = value
        self.values.update(
            {
                "AWS::AccountId": self.account,
                "AWS::Region": self.region,
                "AWS::Partition": self.partition,
                "AWS::StackName": self.name,
                "AWS::URLSuffix": "amazonaws.com",
            }
        )
        self.conditions = {}
        for key in self.template.get("Conditions", {}):
            self._condition(key)

    # --- conditions -----------------------------------------------------------------------------------

    def _condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = self._truth(self.template["Conditions"][name])
        return self.conditions[name]

    def _truth(self, node: Any) -> bool:
        ((fn, arg),) = node.items()
        if fn == "Fn::Equals":
            left, right = (self.resolve(a, set()) for a in arg)
            return str(left) == str(right)
        if fn == "Fn::Not":
            return not self._truth(arg[0])
        if fn == "Fn::And":
            return all(self._truth(a) for a in arg)
        if fn == "Fn::Or":
            return any(self._truth(a) for a in arg)
        if fn == "Condition":
            return self._condition(arg)
        raise ValueError(f"unsupported condition {fn}")

    # --- resources ------------------------------------------------------------------------------------

    def active(self) -> dict[str, dict[str, Any]]:
        return {
            logical: resource
            for logical, resource in self.template["Resources"].items()
            if "Condition" not in resource or self._condition(resource["Condition"])
        }

    def properties(self, logical: str) -> tuple[dict[str, Any], set[str]]:
        """A resource's properties, resolved, and the logical IDs it references (DependsOn included)."""
        resource = self.template["Resources"][logical]
        refs: set[str] = set()
        props = self.resolve(resource.get("Properties", {}), refs)
        depends = resource.get("DependsOn", [])
        refs.update([depends] if isinstance(depends, str) else depends)
        return props, refs

    def physical(self, logical: str, attribute: str | None = None) -> Any:
        resource = self.template["Resources"][logical]
        kind, props = resource["Type"], resource.get("Properties", {})
        p, a, r = self.partition, self.account, self.region

        def named(key: str, default: str | None = None) -> str:
            value = self.resolve(props[key], set()) if key in props else None
            return str(value) if value else (default or f"{self.name}-{logical}")

        if kind == "AWS::IAM::Role":
            role = named("RoleName")
            return {None: role, "Arn": f"arn:{p}:iam::{a}:role/{role}", "RoleId": f"AROA{logical}"}[attribute]
        if kind == "AWS::SQS::Queue":
            queue = named("QueueName")
            return {
                None: f"https://sqs.{r}.amazonaws.com/{a}/{queue}",
                "Arn": f"arn:{p}:sqs:{r}:{a}:{queue}",
                "QueueName": queue,
            }[attribute]
        if kind == "AWS::S3::Bucket":
            bucket = named("BucketName")
            return {None: bucket, "Arn": f"arn:{p}:s3:::{bucket}"}[attribute]
        if kind == "AWS::KMS::Key":
            return {None: f"key-{logical}", "Arn": f"arn:{p}:kms:{r}:{a}:key/key-{logical}"}[attribute]
        if kind == "AWS::Lambda::Function":
            function = named("FunctionName")
            return {None: function, "Arn": f"arn:{p}:lambda:{r}:{a}:function:{function}"}[attribute]
        if attribute is None:
            return f"{self.name}-{logical}"
        return f"{self.name}-{logical}.{attribute}"

    # --- intrinsics -----------------------------------------------------------------------------------

    def resolve(self, node: Any, refs: set[str]) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item, refs) for item in node]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._ref(arg, refs)
            if key.startswith("Fn::") or key == "Condition":
                return self._function(key, arg, refs)
        resolved = {key: self.resolve(value, refs) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

    def _ref(self, name: str, refs: set[str]) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.values:
            return self.values[name]
        refs.add(name)
        return self.physical(name)

    def _function(self, fn: str, arg: Any, refs: set[str]) -> Any:
        if fn == "Fn::If":
            name, yes, no = arg
            return self.resolve(yes if self._condition(name) else no, refs)
        if fn == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            refs.add(logical)
            return self.physical(logical, attribute)
        if fn == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1], refs))
            return _SUB.sub(lambda m: str(self._sub_var(m.group(1), extra, refs)), text)
        if fn == "Fn::Join":
            separator, items = arg
            return separator.join(str(i) for i in self.resolve(items, refs))
        if fn == "Fn::Select":
            index, items = arg
            return self.resolve(items, refs)[int(self.resolve(index, refs))]
        if fn == "Fn::FindInMap":
            mapping, top, second = (self.resolve(a, refs) for a in arg)
            return self.template["Mappings"][mapping][str(top)][second]
        raise ValueError(f"unsupported intrinsic {fn}")

    def _sub_var(self, name: str, extra: dict[str, Any], refs: set[str]) -> Any:
        if name in extra:
            return extra[name]
        if name in self.values:
            value = self.values[name]
            return ",".join(value) if isinstance(value, list) else value
        if "." in name:
            logical, attribute = name.split(".", 1)
            refs.add(logical)
            return self.physical(logical, attribute)
        refs.add(name)
        return self.physical(name)
