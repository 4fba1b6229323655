"""``thumbx doctor``'s checklist (pure): what each finding means, judged from data the probes gathered.

The probes (:mod:`worker.ops.doctor_probe`) talk to AWS and hand plain values to the evaluators here; this
module decides pass / fail / not-checkable and words the line a user reads. Nothing here does I/O.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from worker.core import redrive as queue_redrive
from worker.core.config import RoleSettings
from worker.ops.policies import SESSION_PATTERN


class Status(Enum):
    PASSED = "pass"
    FAILED = "FAIL"
    NOT_CHECKABLE = "not-checkable"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def passed(name: str, detail: str) -> Check:
    return Check(name, Status.PASSED, detail)


def failed(name: str, detail: str) -> Check:
    return Check(name, Status.FAILED, detail)


def unknown(name: str, detail: str) -> Check:
    return Check(name, Status.NOT_CHECKABLE, detail)


def exit_code(checks: Iterable[Check]) -> int:
    """1 when any check failed; not-checkable lines do not fail the run."""
    return 1 if any(check.status is Status.FAILED for check in checks) else 0


def render_table(checks: Sequence[Check]) -> str:
    rows = [("STATUS", "CHECK", "WHY"), *((c.status.value, c.name, c.detail) for c in checks)]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{s:<{widths[0]}}  {n:<{widths[1]}}  {d}" for s, n, d in rows]
    counts = {status: sum(c.status is status for c in checks) for status in Status}
    lines.append(
        f"{counts[Status.PASSED]} passed, {counts[Status.FAILED]} failed, "
        f"{counts[Status.NOT_CHECKABLE]} not checkable"
    )
    return "\n".join(lines)


def evaluate_session_names(role: RoleSettings, pattern: str = SESSION_PATTERN) -> Check:
    """The shipped trust admits only session names and source identities matching ``pattern``, and
    requires a source identity.

    Emulators do not evaluate trust conditions, so a mismatch would only show on AWS: say it here.
    """
    name = "session-names"
    wrong = [
        f"{label} {value!r}"
        for label, value in (
            ("THUMBX_SESSION_NAME", role.session_name),
            ("THUMBX_SOURCE_IDENTITY", role.source_identity),
        )
        if value is not None and not fnmatch.fnmatchcase(value, pattern)
    ]
    if wrong:
        return failed(
            name, f"{', '.join(wrong)} do(es) not match the trust's {pattern!r}: AWS refuses the AssumeRole"
        )
    if role.source_identity is None:
        return failed(name, "no source identity: the trust requires one, so AWS refuses the AssumeRole")
    return passed(name, f"session name and source identity match the trust's {pattern!r}")


# --- configuration evaluators ------------------------------------------------------------------------

PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def evaluate_public_access_block(config: Mapping[str, Any] | None) -> Check:
    name = "block-public-access"
    if config is None:
        return failed(name, "the bucket has no Public Access Block configuration")
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if not config.get(flag)]
    if off:
        return failed(name, f"not enabled: {', '.join(off)}")
    return passed(name, "all four Block Public Access settings are on")


def evaluate_ownership(rules: Sequence[Mapping[str, Any]] | None) -> Check:
    name = "object-ownership"
    owners = [rule.get("ObjectOwnership") for rule in rules or ()]
    if owners == ["BucketOwnerEnforced"]:
        return passed(name, "BucketOwnerEnforced: ACLs disabled, the bucket owner owns every object")
    return failed(name, f"ObjectOwnership is {owners or 'unset'}; want BucketOwnerEnforced")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _denies_insecure_transport(statement: Mapping[str, Any], bucket: str) -> bool:
    if statement.get("Effect") != "Deny" or statement.get("Principal") not in ("*", {"AWS": "*"}):
        return False
    actions = _as_list(statement.get("Action", []))
    if "s3:*" not in actions and "*" not in actions:
        return False
    # resource names without the partition: "arn:aws-cn:s3:::b/*" -> "b/*"
    resources = {str(r).split(":s3:::", 1)[-1] for r in _as_list(statement.get("Resource", []))}
    if not {bucket, f"{bucket}/*"} <= resources:
        return False
    condition = statement.get("Condition", {})
    return str(condition.get("Bool", {}).get("aws:SecureTransport", "")).lower() == "false"


def evaluate_bucket_policy(policy_text: str | None, bucket: str, *, emulator: bool = False) -> Check:
    """The bucket policy must carry a Deny of every S3 action without TLS, on the bucket and its objects."""
    name = "tls-deny"
    if policy_text is None:
        if emulator:
            return unknown(
                name,
                "no bucket policy; the emulator ignores policy conditions (a conditional Deny would block "
                "everyone), so this control is checked statically (make check-deploy, test_policies.py)",
            )
        return failed(name, "the bucket has no policy, so requests without TLS are not denied")
    try:
        document = json.loads(policy_text)
    except ValueError:
        return failed(name, "the bucket policy is not valid JSON")
    statements = [s for s in _as_list(document.get("Statement", [])) if isinstance(s, dict)]
    if any(_denies_insecure_transport(s, bucket) for s in statements):
        return passed(name, "the bucket policy denies every request made without TLS")
    return failed(name, "no Deny on aws:SecureTransport=false for the bucket and its objects")


def evaluate_notification(
    configuration: Mapping[str, Any], queue_arn: str | None, input_prefix: str, output_prefix: str
) -> Check:
    """ObjectCreated notifications must be filtered to the input prefix and never cover the outputs."""
    name = "notification-filter"
    created: list[tuple[str, str, str]] = []  # (id, target, prefix)
    for kind, target_key in (
        ("QueueConfigurations", "QueueArn"),
        ("TopicConfigurations", "TopicArn"),
        ("LambdaFunctionConfigurations", "LambdaFunctionArn"),
    ):
        for entry in configuration.get(kind, []) or []:
            if not any(str(event).startswith("s3:ObjectCreated") for event in entry.get("Events", [])):
                continue
            rules = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            prefix = next(
                (str(r.get("Value", "")) for r in rules if str(r.get("Name", "")).lower() == "prefix"), ""
            )
            created.append((str(entry.get("Id", kind)), str(entry.get(target_key, "")), prefix))
    if configuration.get("EventBridgeConfiguration") is not None:
        return failed(
            name,
            "EventBridge delivery is on: it sends every object's events, thumbnails included; "
            "make sure its rules filter on the input prefix",
        )
    if not created:
        return failed(name, "no ObjectCreated notification: uploads never reach the queue")
    for entry_id, _target, prefix in created:
        if output_prefix.startswith(prefix) or prefix.startswith(output_prefix):
            shown = f"prefix {prefix!r}" if prefix else "no prefix filter"
            return failed(
                name,
                f"notification {entry_id} has {shown}, which covers the output prefix {output_prefix!r}: "
                "thumbnails would re-trigger the worker",
            )
    if queue_arn is not None and not any(target == queue_arn for _id, target, _p in created):
        return failed(name, f"no ObjectCreated notification targets the worker's queue {queue_arn}")
    prefixes = sorted({prefix for _id, _t, prefix in created})
    if not all(prefix.startswith(input_prefix) for prefix in prefixes):
        return failed(
            name, f"notifications filter on {prefixes}, not within the input prefix {input_prefix!r}"
        )
    return passed(name, f"ObjectCreated under {', '.join(repr(p) for p in prefixes)} only (outputs excluded)")


def parse_redrive(raw: str | None) -> tuple[str, int] | None:
    """A RedrivePolicy attribute as (deadLetterTargetArn, maxReceiveCount); None if absent or malformed."""
    redrive = queue_redrive.parse_redrive(raw)
    return None if redrive is None else (redrive.dead_letter_target_arn, redrive.max_receive_count)


def evaluate_dead_letter(attributes: Mapping[str, str]) -> Check:
    name = "queue-dead-letter"
    raw = attributes.get("RedrivePolicy")
    if not raw:
        return failed(name, "the queue has no redrive policy: a poison message is retried forever")
    redrive = parse_redrive(raw)
    if redrive is None:
        return failed(name, f"the queue's redrive policy is malformed: {raw!r}")
    target, count = redrive
    return passed(name, f"after {count} receives messages move to {target.rsplit(':', 1)[-1]}")


def evaluate_worker_dlq(
    dlq_url: str | None, dlq_arn: str | None, error: str | None, queue: Mapping[str, str] | None
) -> Check:
    """THUMBX_DLQ_URL: set, and reachable with the credentials the worker sends to it with."""
    name = "worker-dead-letter"
    if not dlq_url:
        return failed(
            name,
            "THUMBX_DLQ_URL is unset: a permanent failure is retried until the redrive policy moves it, "
            "without its reason",
        )
    if error is not None:
        return failed(
            name, f"THUMBX_DLQ_URL refused GetQueueAttributes to the worker's queue credentials: {error}"
        )
    redrive = parse_redrive((queue or {}).get("RedrivePolicy"))
    also = " (also the queue's redrive target)" if redrive and redrive[0] == dlq_arn else ""
    return passed(name, f"permanent failures go to {dlq_url.rstrip('/').rsplit('/', 1)[-1]}{also}")


def evaluate_visibility(
    attributes: Mapping[str, str], worker_visibility: int, lambda_timeout: int | None = None
) -> Check:
    name = "queue-visibility"
    try:
        visibility = int(attributes["VisibilityTimeout"])
    except (KeyError, ValueError):
        return unknown(name, "the queue did not report its VisibilityTimeout")
    if lambda_timeout is not None and visibility < 6 * lambda_timeout:
        return failed(
            name,
            f"VisibilityTimeout {visibility}s is under 6x the Lambda timeout ({6 * lambda_timeout}s): "
            "batches would be redelivered while still running",
        )
    if visibility < worker_visibility:
        return failed(
            name,
            f"VisibilityTimeout {visibility}s is under the worker's THUMBX_VISIBILITY_TIMEOUT "
            f"{worker_visibility}s",
        )
    return passed(name, f"VisibilityTimeout {visibility}s")
