"""``thumbx doctor``'s probes: act as the worker against a live environment and gather what to judge.

Two identities take part. The *worker* (the credentials ``thumbx worker`` would run with) assumes
ThumbXRole and tries what the worker does - and what it must not be able to do. The optional *inspector*
(an administrator of account B, ``--inspect-profile``) places the input probe, reads the bucket's
configuration, which least privilege keeps from ThumbXRole, and removes the probes afterwards. Without an
inspector those lines are reported as not checkable and the output probe stays at a fixed key.
"""

from __future__ import annotations

import io
import ipaddress
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from worker.aws.errors import error_code, http_status
from worker.core.config import Settings
from worker.ops.doctor import (
    Check,
    evaluate_bucket_policy,
    evaluate_dead_letter,
    evaluate_notification,
    evaluate_ownership,
    evaluate_public_access_block,
    evaluate_session_names,
    evaluate_visibility,
    evaluate_worker_dlq,
    failed,
    passed,
    unknown,
)

PROBE_DIR = "_thumbx-doctor/"
SESSION_NAME = "thumbx-doctor"
_DENIED = {"AccessDenied", "AccessDeniedException", "403", "Forbidden"}
_NO_INSPECTOR = "needs --inspect-profile (an account-B administrator): ThumbXRole may not read this"


def probe_keys(settings: Settings) -> dict[str, str]:
    """Where the probes live (documented: a run without an inspector leaves ``output`` behind)."""
    layout = settings.layout
    return {
        "input": f"{layout.input_prefix}{PROBE_DIR}probe.png",
        "output": f"{layout.output_prefix}{PROBE_DIR}probe.txt",
        "outside_root": f"{PROBE_DIR}outside-probe.txt",
        "outside_input": f"{layout.input_prefix}{PROBE_DIR}write-probe.txt",
    }


def is_emulator(endpoint_url: str | None) -> bool:
    """A loopback endpoint is an emulator (moto / LocalStack), where policy conditions are not enforced."""
    if not endpoint_url:
        return False
    host = urlparse(endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _denied(exc: ClientError) -> bool:
    return error_code(exc) in _DENIED or http_status(exc) == 403


def _why(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return f"{error_code(exc) or http_status(exc)}"
    return type(exc).__name__


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1, 1), "white").save(out, "PNG")
    return out.getvalue()


class Doctor:
    def __init__(
        self,
        settings: Settings,
        worker: boto3.Session,
        inspector: boto3.Session | None = None,
        *,
        lambda_timeout: int | None = None,
    ) -> None:
        self.settings = settings
        self.worker = worker
        self.inspector = inspector
        self.lambda_timeout = lambda_timeout
        self.keys = probe_keys(settings)
        self.checks: list[Check] = []
        self._written: set[str] = set()
        self._notification: dict[str, Any] | None = None
        self._config = Config(
            retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=15
        )

    def client(self, session: boto3.Session, service: str) -> Any:
        return session.client(
            service,
            endpoint_url=self.settings.endpoint_url,
            region_name=self.settings.region,
            config=self._config,
        )

    def run(self) -> list[Check]:
        if self.settings.role is not None:
            self.checks.append(evaluate_session_names(self.settings.role))
        role = self.assume_role()
        if role is None:
            for name in (
                "read-input",
                "write-output",
                "delete-refused",
                "list-refused",
                "write-outside-refused",
            ):
                self.checks.append(unknown(name, "ThumbXRole could not be assumed"))
        else:
            s3 = self.client(role, "s3")
            self.read_input(s3)
            self.write_output(s3)
            self.refused(
                "delete-refused",
                "delete",
                lambda: s3.delete_object(Bucket=self.bucket, Key=self.keys["output"]),
            )
            self.refused(
                "list-refused",
                "list",
                lambda: s3.list_objects_v2(
                    Bucket=self.bucket, Prefix=self.settings.layout.output_prefix, MaxKeys=1
                ),
            )
            self.write_outside(s3)
        self.bucket_configuration()
        self.queue(role)
        self.cleanup()
        return self.checks

    @property
    def bucket(self) -> str:
        return self.settings.bucket

    # --- the worker's side ----------------------------------------------------------------------------

    def assume_role(self) -> boto3.Session | None:
        name = "assume-role"
        role = self.settings.role
        if role is None:
            self.checks.append(
                unknown(name, "THUMBX_ROLE_ARN is not set: the worker uses its own credentials")
            )
            return self.worker
        request: dict[str, Any] = {
            "RoleArn": role.role_arn,
            "RoleSessionName": SESSION_NAME,
            "DurationSeconds": 900,
        }
        if role.external_id:
            request["ExternalId"] = role.external_id
        if role.source_identity:
            request["SourceIdentity"] = role.source_identity
        try:
            credentials = self.client(self.worker, "sts").assume_role(**request)["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            self.checks.append(failed(name, f"sts:AssumeRole on {role.role_arn} refused: {_why(exc)}"))
            return None
        extras = [
            "external ID" if role.external_id else "no external ID",
            f"source identity {role.source_identity}" if role.source_identity else "no source identity",
        ]
        self.checks.append(passed(name, f"{role.role_arn} ({', '.join(extras)})"))
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    def read_input(self, s3: Any) -> None:
        name, key = "read-input", self.keys["input"]
        if self.inspector is None:
            self.checks.append(
                unknown(name, f"needs --inspect-profile to place {key} (ThumbXRole may not write there)")
            )
            return
        body = _png()
        try:
            self.client(self.inspector, "s3").put_object(Bucket=self.bucket, Key=key, Body=body)
        except (ClientError, BotoCoreError) as exc:
            self.checks.append(unknown(name, f"the inspector could not place {key}: {_why(exc)}"))
            return
        self._written.add(key)
        try:
            got = s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            self.checks.append(failed(name, f"GetObject {key} refused: {_why(exc)}"))
            return
        verdict = passed if got == body else failed
        self.checks.append(verdict(name, f"read {key} ({len(got)} bytes)"))

    def write_output(self, s3: Any) -> None:
        name, key = "write-output", self.keys["output"]
        body = f"thumbx doctor probe {time.time():.0f}\n".encode()
        try:
            s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="text/plain")
            self._written.add(key)
            got = s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            self.checks.append(failed(name, f"PutObject/GetObject {key} refused: {_why(exc)}"))
            return
        verdict = passed if got == body else failed
        self.checks.append(verdict(name, f"wrote and read back {key}"))

    def refused(self, name: str, what: str, call: Callable[[], Any]) -> None:
        try:
            call()
        except ClientError as exc:
            if _denied(exc):
                self.checks.append(passed(name, f"ThumbXRole may not {what} ({_why(exc)})"))
            else:
                self.checks.append(unknown(name, f"{what} failed for another reason: {_why(exc)}"))
            return
        except BotoCoreError as exc:
            self.checks.append(unknown(name, f"{what} failed for another reason: {_why(exc)}"))
            return
        if what == "delete":
            self._written.discard(self.keys["output"])
        self.checks.append(
            failed(name, f"ThumbXRole may {what} in the bucket: that permission must not be granted")
        )

    def write_outside(self, s3: Any) -> None:
        name = "write-outside-refused"
        allowed = []
        for label in ("outside_root", "outside_input"):
            key = self.keys[label]
            try:
                s3.put_object(Bucket=self.bucket, Key=key, Body=b"thumbx doctor probe\n")
            except ClientError as exc:
                if not _denied(exc):
                    self.checks.append(
                        unknown(name, f"PutObject {key} failed for another reason: {_why(exc)}")
                    )
                    return
                continue
            self._written.add(key)
            allowed.append(key)
        if allowed:
            self.checks.append(
                failed(name, f"ThumbXRole wrote outside the output prefix: {', '.join(allowed)}")
            )
        else:
            self.checks.append(passed(name, "writes outside the output prefix are refused"))

    # --- configuration (inspector) ----------------------------------------------------------------------

    def bucket_configuration(self) -> None:
        names = ("block-public-access", "object-ownership", "tls-deny")
        if self.inspector is None:
            self.checks.extend(unknown(name, _NO_INSPECTOR) for name in names)
            return
        s3 = self.client(self.inspector, "s3")
        try:
            public = _absent_is_none(
                lambda: s3.get_public_access_block(Bucket=self.bucket)["PublicAccessBlockConfiguration"],
                "NoSuchPublicAccessBlockConfiguration",
            )
            ownership = _absent_is_none(
                lambda: s3.get_bucket_ownership_controls(Bucket=self.bucket)["OwnershipControls"]["Rules"],
                "OwnershipControlsNotFoundError",
            )
            policy = _absent_is_none(
                lambda: s3.get_bucket_policy(Bucket=self.bucket)["Policy"], "NoSuchBucketPolicy"
            )
            self._notification = s3.get_bucket_notification_configuration(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            self.checks.extend(
                unknown(name, f"the inspector could not read it: {_why(exc)}") for name in names
            )
            self._notification = None
            return
        self.checks.append(evaluate_public_access_block(public))
        self.checks.append(evaluate_ownership(ownership))
        self.checks.append(
            evaluate_bucket_policy(policy, self.bucket, emulator=is_emulator(self.settings.endpoint_url))
        )

    def queue(self, role: boto3.Session | None) -> None:
        session = role if self.settings.queue_credentials == "storage" else self.worker
        names = ("queue-dead-letter", "queue-visibility")
        attributes: dict[str, str] | None = None
        if session is not None:
            try:
                attributes = self.client(session, "sqs").get_queue_attributes(
                    QueueUrl=self.settings.queue_url, AttributeNames=["All"]
                )["Attributes"]
            except (ClientError, BotoCoreError) as exc:
                self.checks.extend(unknown(n, f"GetQueueAttributes refused: {_why(exc)}") for n in names)
        else:
            self.checks.extend(
                unknown(n, "the queue is read with ThumbXRole, which was not assumed") for n in names
            )
        layout = self.settings.layout
        notification = self._notification
        if notification is None:
            self.checks.append(unknown("notification-filter", _NO_INSPECTOR))
        else:
            queue_arn = attributes.get("QueueArn") if attributes else None
            self.checks.append(
                evaluate_notification(notification, queue_arn, layout.input_prefix, layout.output_prefix)
            )
        if attributes is not None:
            self.checks.append(evaluate_dead_letter(attributes))
            self.checks.append(
                evaluate_visibility(attributes, self.settings.visibility_timeout, self.lambda_timeout)
            )
        self.worker_dead_letter(session, attributes)

    def worker_dead_letter(self, session: boto3.Session | None, queue: dict[str, str] | None) -> None:
        """GetQueueAttributes on THUMBX_DLQ_URL with the queue credentials (granted with SendMessage; the
        doctor does not send, which would put a probe among real failures)."""
        url = self.settings.dlq_url
        dlq_arn: str | None = None
        error: str | None = None
        if url:
            if session is None:
                why = "the DLQ is reached with ThumbXRole, which was not assumed"
                self.checks.append(unknown("worker-dead-letter", why))
                return
            try:
                dlq_arn = self.client(session, "sqs").get_queue_attributes(
                    QueueUrl=url, AttributeNames=["QueueArn"]
                )["Attributes"]["QueueArn"]
            except (ClientError, BotoCoreError, KeyError) as exc:
                error = _why(exc)
        self.checks.append(evaluate_worker_dlq(url, dlq_arn, error, queue))

    def cleanup(self) -> None:
        name = "probes-cleaned"
        if not self._written:
            return
        if self.inspector is None:
            left = ", ".join(sorted(self._written))
            self.checks.append(
                unknown(name, f"left {left} (ThumbXRole may not delete; the next run overwrites)")
            )
            return
        s3 = self.client(self.inspector, "s3")
        try:
            s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in sorted(self._written)], "Quiet": True},
            )
        except (ClientError, BotoCoreError) as exc:
            self.checks.append(unknown(name, f"the inspector could not delete the probes: {_why(exc)}"))
            return
        self.checks.append(passed(name, f"removed {len(self._written)} probe object(s)"))


def _absent_is_none(call: Callable[[], Any], absent_code: str) -> Any:
    try:
        return call()
    except ClientError as exc:
        if error_code(exc) == absent_code:
            return None
        raise


def run_doctor(
    settings: Settings,
    worker: boto3.Session,
    inspector: boto3.Session | None = None,
    *,
    lambda_timeout: int | None = None,
) -> list[Check]:
    """Every checklist line for this deployment, in the order a user reads them."""
    return Doctor(settings, worker, inspector, lambda_timeout=lambda_timeout).run()
