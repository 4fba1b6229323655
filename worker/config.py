"""Typed settings, read from ``THUMBX_*`` environment variables and validated once.

A missing or invalid setting raises :class:`~worker.errors.ConfigError` whose message names the variable;
the CLI prints that one line and exits 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from worker.errors import ConfigError
from worker.keys import KeyLayout
from worker.limits import KNOWN_FORMATS, MIB, READ_COPIES, Limits
from worker.presets import DEFAULT_PRESETS, Preset, parse_presets

MAX_SESSION_SECONDS = 3600  # role chaining (ECS task role / Lambda role -> ThumbXRole) caps sessions at 1 h
MIN_SESSION_SECONDS = 900  # STS minimum
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,128}$")
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
_QUEUE_URL = re.compile(r"^https?://\S+/\d{12}/[\w-]{1,80}(\.fifo)?$")

QueueCredentials = Literal["role", "base"]


@dataclass(frozen=True)
class RoleSettings:
    """How to assume the storage account's role."""

    role_arn: str
    session_name: str = "thumbx-worker"
    external_id: str | None = None
    source_identity: str | None = "thumbx-worker"
    duration_seconds: int = MAX_SESSION_SECONDS


@dataclass(frozen=True)
class Settings:
    queue_url: str
    bucket: str
    region: str = "us-east-1"
    endpoint_url: str | None = None
    role: RoleSettings | None = None
    queue_credentials: QueueCredentials = "role"
    layout: KeyLayout = field(default_factory=KeyLayout)
    presets: tuple[Preset, ...] = field(default_factory=lambda: parse_presets(DEFAULT_PRESETS))
    concurrency: int = 10  # one full SQS batch in flight; renders are bounded by render_threads (make bench)
    render_threads: int = 2
    wait_seconds: int = 20
    visibility_timeout: int = 60
    dlq_url: str | None = None
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "info"
    # --- reliability (issue 4): shutdown, retries, heartbeat cap, health endpoint, EMF metrics
    shutdown_seconds: int = 25  # fits ECS's default 30 s stopTimeout with room to release and flush
    retry_base_seconds: int = 10
    max_extend_seconds: int = 3600  # heartbeat cap: stop extending a message's visibility after this long
    health_host: str = "127.0.0.1"
    health_port: int | None = 8080  # None: no health server; 0: any free port
    emf_seconds: int = 60  # CloudWatch Embedded Metric Format log line every N seconds; 0: off
    limits: Limits = field(default_factory=Limits)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``env`` (default: ``os.environ``)."""
    env = os.environ if env is None else env
    reader = _Reader(env)
    role_arn = reader.optional("THUMBX_ROLE_ARN")
    role = None
    if role_arn is not None:
        if not _ROLE_ARN.match(role_arn):
            raise ConfigError(f"THUMBX_ROLE_ARN: {role_arn!r} is not an IAM role ARN")
        session_name = reader.text("THUMBX_SESSION_NAME", "thumbx-worker")
        if not _SESSION_NAME.match(session_name):
            raise ConfigError("THUMBX_SESSION_NAME: 2-64 characters of letters, digits and +=,.@_-")
        role = RoleSettings(
            role_arn=role_arn,
            session_name=session_name,
            external_id=reader.optional("THUMBX_EXTERNAL_ID"),
            source_identity=reader.optional("THUMBX_SOURCE_IDENTITY", session_name),
            duration_seconds=reader.integer(
                "THUMBX_SESSION_SECONDS", MAX_SESSION_SECONDS, MIN_SESSION_SECONDS, MAX_SESSION_SECONDS
            ),
        )
    queue_credentials = reader.choice("THUMBX_QUEUE_CREDENTIALS", "role", ("role", "base"))
    if queue_credentials == "role" and role is None:
        queue_credentials = "base"
    queue_url = reader.required("THUMBX_QUEUE_URL")
    if not _QUEUE_URL.match(queue_url):
        raise ConfigError(f"THUMBX_QUEUE_URL: {queue_url!r} is not an SQS queue URL")
    layout = KeyLayout(
        input_prefix=reader.text("THUMBX_INPUT_PREFIX", "input/"),
        output_prefix=reader.text("THUMBX_OUTPUT_PREFIX", "thumbnails/"),
    )
    check_layout(layout)
    return Settings(
        queue_url=queue_url,
        bucket=reader.required("THUMBX_BUCKET"),
        region=reader.text(
            "THUMBX_REGION", env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        ),
        endpoint_url=reader.optional("THUMBX_ENDPOINT_URL"),
        role=role,
        queue_credentials="role" if queue_credentials == "role" else "base",
        layout=layout,
        presets=parse_presets(reader.text("THUMBX_PRESETS", DEFAULT_PRESETS)),
        concurrency=reader.integer("THUMBX_CONCURRENCY", 10, 1, 256),
        render_threads=reader.integer("THUMBX_RENDER_THREADS", os.cpu_count() or 2, 1, 64),
        wait_seconds=reader.integer("THUMBX_WAIT_SECONDS", 20, 0, 20),
        visibility_timeout=reader.integer("THUMBX_VISIBILITY_TIMEOUT", 60, 5, 43200),
        dlq_url=reader.optional("THUMBX_DLQ_URL"),
        log_format=_log_format(reader.choice("THUMBX_LOG_FORMAT", "auto", ("auto", "json", "console"))),
        log_level=reader.choice("THUMBX_LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        limits=_limits(reader),
        **_reliability(reader),
    )


def load_limits(env: Mapping[str, str] | None = None) -> Limits:
    """Only the imaging limits (for commands such as ``thumbx render`` that need no queue or bucket)."""
    return _limits(_Reader(os.environ if env is None else env))


def _limits(reader: _Reader) -> Limits:
    """What the imaging core accepts: THUMBX_MAX_* caps, THUMBX_ALLOWED_FORMATS, time and memory bounds."""
    default = Limits()
    formats = reader.text("THUMBX_ALLOWED_FORMATS", ",".join(sorted(default.formats)))
    allowed = frozenset(
        part.strip().lower().replace("jpg", "jpeg") for part in formats.split(",") if part.strip()
    )
    unknown = sorted(allowed - set(KNOWN_FORMATS))
    if unknown or not allowed:
        raise ConfigError(
            f"THUMBX_ALLOWED_FORMATS: {', '.join(unknown) or 'empty'}; known: {', '.join(KNOWN_FORMATS)}"
        )
    limits = Limits(
        max_bytes=reader.integer("THUMBX_MAX_BYTES", default.max_bytes, 1, 2**40),
        max_pixels=reader.integer("THUMBX_MAX_PIXELS", default.max_pixels, 1, 2**40),
        max_frames=reader.integer("THUMBX_MAX_FRAMES", default.max_frames, 1, 10_000),
        formats=allowed,
        timeout_seconds=reader.integer("THUMBX_RENDER_TIMEOUT", int(default.timeout_seconds), 1, 3600),
        memory_budget_bytes=reader.integer(
            "THUMBX_RENDER_MEMORY_MB", default.memory_budget_bytes // MIB, 64, 2**20
        )
        * MIB,
        max_progressive_pixels=reader.integer(
            "THUMBX_MAX_PROGRESSIVE_PIXELS", default.max_progressive_pixels, 0, 2**40
        ),
    )
    if READ_COPIES * limits.max_bytes > limits.memory_budget_bytes:
        raise ConfigError(
            f"THUMBX_MAX_BYTES: {limits.max_bytes} is more than half of THUMBX_RENDER_MEMORY_MB "
            f"({limits.memory_budget_bytes // MIB} MiB); a source is held twice while it is downloaded"
        )
    return limits


def _reliability(reader: _Reader) -> dict[str, Any]:
    port = reader.text("THUMBX_HEALTH_PORT", "8080")
    return {
        "shutdown_seconds": reader.integer("THUMBX_SHUTDOWN_SECONDS", 25, 1, 3600),
        "retry_base_seconds": reader.integer("THUMBX_RETRY_BASE_SECONDS", 10, 0, 900),
        "max_extend_seconds": reader.integer("THUMBX_MAX_EXTEND_SECONDS", 3600, 0, 43200),
        "health_host": reader.text("THUMBX_HEALTH_HOST", "127.0.0.1"),
        "health_port": (
            None if port.lower() == "off" else reader.integer("THUMBX_HEALTH_PORT", 8080, 0, 65535)
        ),
        "emf_seconds": reader.integer("THUMBX_EMF_SECONDS", 60, 0, 86400),
    }


def check_layout(layout: KeyLayout) -> None:
    """The loop guard on the prefixes: each ends with '/', neither contains the other."""
    if not layout.input_prefix.endswith("/") or not layout.output_prefix.endswith("/"):
        raise ConfigError("THUMBX_INPUT_PREFIX / THUMBX_OUTPUT_PREFIX: prefixes must end with '/'")
    if layout.output_prefix.startswith(layout.input_prefix) or layout.input_prefix.startswith(
        layout.output_prefix
    ):
        raise ConfigError(
            "THUMBX_OUTPUT_PREFIX: must not overlap THUMBX_INPUT_PREFIX"
            " (thumbnails would re-trigger the worker)"
        )


def _log_format(value: str) -> Literal["auto", "json", "console"]:
    if value == "json":
        return "json"
    if value == "console":
        return "console"
    return "auto"


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def optional(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "").strip()
        return value or default

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ConfigError(f"{name}: required but not set")
        return value

    def text(self, name: str, default: str) -> str:
        value = self.optional(name)
        return default if value is None else value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}: {raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise ConfigError(f"{name}: {value} is outside {low}..{high}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            raise ConfigError(f"{name}: {value!r} is not one of {', '.join(choices)}")
        return value
