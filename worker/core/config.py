"""Typed settings, read from ``THUMBX_*`` environment variables and validated once.

A missing or invalid setting raises :class:`~worker.core.errors.ConfigError` whose message names the variable;
the CLI prints that one line and exits 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from worker.core.environ import Reader, check_queue_host, with_example
from worker.core.errors import ConfigError
from worker.core.keys import KeyLayout
from worker.core.limits import KNOWN_FORMATS, MIB, READ_COPIES, Limits
from worker.core.presets import DEFAULT_PRESETS, Preset, parse_presets
from worker.core.settings import BY_NAME, MAX_SESSION_SECONDS

_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")

QueuePlacement = Literal["storage", "compute"]  # the templates' QueuePlacement: which account holds it


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
    queue_credentials: QueuePlacement = "storage"  # storage: read with the role; compute: base credentials
    layout: KeyLayout = field(default_factory=KeyLayout)
    presets: tuple[Preset, ...] = field(default_factory=lambda: parse_presets(DEFAULT_PRESETS))
    manifest: bool = True  # THUMBX_MANIFEST
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
    """Build :class:`Settings` from ``env`` (default: ``os.environ``), each value read through the table
    of :mod:`worker.core.settings` (validated where it is read, one line naming it on error)."""
    env = os.environ if env is None else env
    reader = Reader(env)
    queue_url = reader.required("THUMBX_QUEUE_URL")
    bucket = reader.required("THUMBX_BUCKET")
    endpoint_url = reader.optional("THUMBX_ENDPOINT_URL")
    check_queue_host("THUMBX_QUEUE_URL", queue_url, endpoint_url)
    dlq_url = reader.optional("THUMBX_DLQ_URL")
    if dlq_url is not None:
        check_queue_host("THUMBX_DLQ_URL", dlq_url, endpoint_url)
    role_arn = reader.optional("THUMBX_ROLE_ARN")
    role = None
    if role_arn is not None:
        session_name = reader.text("THUMBX_SESSION_NAME")
        if not _SESSION_NAME.match(session_name):
            raise with_example(
                BY_NAME["THUMBX_SESSION_NAME"],
                "THUMBX_SESSION_NAME: 2-64 characters of letters, digits and +=,.@_-",
            )
        role = RoleSettings(
            role_arn=role_arn,
            session_name=session_name,
            external_id=reader.optional("THUMBX_EXTERNAL_ID"),
            source_identity=reader.optional("THUMBX_SOURCE_IDENTITY") or session_name,
            duration_seconds=reader.integer("THUMBX_SESSION_SECONDS"),
        )
    else:
        for name in (
            "THUMBX_EXTERNAL_ID",
            "THUMBX_SESSION_NAME",
            "THUMBX_SOURCE_IDENTITY",
            "THUMBX_SESSION_SECONDS",
        ):
            reader.optional(name)  # refused when set: each has no effect without THUMBX_ROLE_ARN
    queue_credentials = reader.choice("THUMBX_QUEUE_CREDENTIALS")
    if queue_credentials == "storage" and role is None:
        queue_credentials = "compute"  # no role to assume: only the base credentials can read it
    layout = KeyLayout(
        input_prefix=reader.text("THUMBX_INPUT_PREFIX"),
        output_prefix=reader.text("THUMBX_OUTPUT_PREFIX"),
    )
    try:
        check_layout(layout)
    except ConfigError as exc:
        raise with_example(BY_NAME["THUMBX_OUTPUT_PREFIX"], str(exc)) from None
    return Settings(
        queue_url=queue_url,
        bucket=bucket,
        region=reader.text(
            "THUMBX_REGION", env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        ),
        endpoint_url=endpoint_url,
        role=role,
        queue_credentials="storage" if queue_credentials == "storage" else "compute",
        layout=layout,
        presets=parse_presets(reader.text("THUMBX_PRESETS")),
        manifest=reader.choice("THUMBX_MANIFEST") == "on",
        concurrency=reader.integer("THUMBX_CONCURRENCY"),
        render_threads=reader.integer("THUMBX_RENDER_THREADS", os.cpu_count() or 2),
        wait_seconds=reader.integer("THUMBX_WAIT_SECONDS"),
        visibility_timeout=reader.integer("THUMBX_VISIBILITY_TIMEOUT"),
        dlq_url=dlq_url,
        log_format=_log_format(reader.choice("THUMBX_LOG_FORMAT")),
        log_level=reader.choice("THUMBX_LOG_LEVEL"),
        limits=_limits(reader),
        **_reliability(reader),
    )


# What ``thumbx render`` reads (its --help lists them from the table): the presets and the imaging limits.
RENDER_SETTINGS = (
    "THUMBX_PRESETS",
    "THUMBX_ALLOWED_FORMATS",
    "THUMBX_MAX_BYTES",
    "THUMBX_MAX_PIXELS",
    "THUMBX_MAX_FRAMES",
    "THUMBX_MAX_PROGRESSIVE_PIXELS",
    "THUMBX_RENDER_MEMORY_MB",
    "THUMBX_RENDER_TIMEOUT",
)


def load_limits(env: Mapping[str, str] | None = None) -> Limits:
    """Only the imaging limits (for commands such as ``thumbx render`` that need no queue or bucket)."""
    return _limits(Reader(os.environ if env is None else env))


def load_presets(env: Mapping[str, str] | None = None) -> tuple[Preset, ...]:
    """Only ``THUMBX_PRESETS`` (empty refused, unset: the default)."""
    return parse_presets(Reader(os.environ if env is None else env).text("THUMBX_PRESETS"))


def _limits(reader: Reader) -> Limits:
    """What the imaging core accepts: THUMBX_MAX_* caps, THUMBX_ALLOWED_FORMATS, time and memory bounds."""
    formats = reader.text("THUMBX_ALLOWED_FORMATS")
    allowed = frozenset(
        part.strip().lower().replace("jpg", "jpeg") for part in formats.split(",") if part.strip()
    )
    unknown = sorted(allowed - set(KNOWN_FORMATS))
    if unknown or not allowed:
        raise with_example(
            BY_NAME["THUMBX_ALLOWED_FORMATS"],
            f"THUMBX_ALLOWED_FORMATS: {', '.join(unknown) or 'empty'}; known: {', '.join(KNOWN_FORMATS)}",
        )
    limits = Limits(
        max_bytes=reader.integer("THUMBX_MAX_BYTES"),
        max_pixels=reader.integer("THUMBX_MAX_PIXELS"),
        max_frames=reader.integer("THUMBX_MAX_FRAMES"),
        formats=allowed,
        timeout_seconds=reader.integer("THUMBX_RENDER_TIMEOUT"),
        memory_budget_bytes=reader.integer("THUMBX_RENDER_MEMORY_MB") * MIB,
        max_progressive_pixels=reader.integer("THUMBX_MAX_PROGRESSIVE_PIXELS"),
    )
    if READ_COPIES * limits.max_bytes > limits.memory_budget_bytes:
        raise with_example(
            BY_NAME["THUMBX_MAX_BYTES"],
            f"THUMBX_MAX_BYTES: {limits.max_bytes} is more than half of THUMBX_RENDER_MEMORY_MB "
            f"({limits.memory_budget_bytes // MIB} MiB); a source is held twice while it is downloaded",
        )
    return limits


def _reliability(reader: Reader) -> dict[str, Any]:
    return {
        "shutdown_seconds": reader.integer("THUMBX_SHUTDOWN_SECONDS"),
        "retry_base_seconds": reader.integer("THUMBX_RETRY_BASE_SECONDS"),
        "max_extend_seconds": reader.integer("THUMBX_MAX_EXTEND_SECONDS"),
        "health_host": reader.text("THUMBX_HEALTH_HOST"),
        "health_port": reader.port("THUMBX_HEALTH_PORT"),
        "emf_seconds": reader.integer("THUMBX_EMF_SECONDS"),
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
