"""Per-task session names: which ECS task or Lambda environment made a call, in B's CloudTrail.

ThumbXRole's trust requires a ``thumbx-*`` source identity, and a source identity cannot change for the life
of a session, so each task gets its own: ``thumbx-worker-<task id>`` (the ECS task metadata endpoint,
``ECS_CONTAINER_METADATA_URI_V4``) and ``thumbx-lambda-<environment id>`` (the execution environment's
id from its log stream name, else the request id of the invocation that opened it). Used as both the
role session name and the source identity unless ``THUMBX_SESSION_NAME`` / ``THUMBX_SOURCE_IDENTITY`` are
set. Without a metadata endpoint (a laptop, compose) the configured default stays.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import structlog

from worker.core.config import RoleSettings
from worker.core.environ import Reader

log = structlog.get_logger(__name__)
_UNSAFE = re.compile(r"[^\w+=,.@-]")
_TASK_ARN = re.compile(r"^arn:[\w-]+:ecs:[\w-]+:\d{12}:task/(?:[^/]+/)?(?P<id>[\w-]+)$")
_LOG_STREAM_ID = re.compile(r"\]([0-9a-f]{16,64})$")
MetadataFetcher = Callable[[str], Mapping[str, Any]]


def session_name(kind: str, identifier: str) -> str:
    """``thumbx-<kind>-<identifier>`` in the characters and the 64 characters STS allows."""
    return f"thumbx-{kind}-{_UNSAFE.sub('-', identifier)}"[:64]


def ecs_task_id(task_metadata: Mapping[str, Any]) -> str | None:
    """The task id from the metadata endpoint's ``/task`` document (its ``TaskARN``)."""
    match = _TASK_ARN.match(str(task_metadata.get("TaskARN", "")))
    return match.group("id") if match else None


def lambda_environment_id(env: Mapping[str, str]) -> str | None:
    """The execution environment's id: the hex tail of ``AWS_LAMBDA_LOG_STREAM_NAME``."""
    match = _LOG_STREAM_ID.search(env.get("AWS_LAMBDA_LOG_STREAM_NAME", ""))
    return match.group(1) if match else None


def fetch_task_metadata(uri: str) -> Mapping[str, Any]:
    if not uri.startswith("http://"):  # the agent's link-local endpoint; never follow anything else
        raise ValueError(f"unexpected task metadata endpoint {uri!r}")
    with urllib.request.urlopen(f"{uri.rstrip('/')}/task", timeout=2) as response:  # noqa: S310
        document = json.load(response)
    return document if isinstance(document, dict) else {}


def _named(role: RoleSettings, env: Mapping[str, str], name: str) -> RoleSettings:
    identity = role.source_identity if Reader(env).given("THUMBX_SOURCE_IDENTITY") else name
    return replace(role, session_name=name, source_identity=identity)


def for_ecs_task(
    role: RoleSettings | None, env: Mapping[str, str], fetch: MetadataFetcher = fetch_task_metadata
) -> RoleSettings | None:
    """``role`` named after this ECS task, when it runs in one and no name was configured."""
    uri = env.get("ECS_CONTAINER_METADATA_URI_V4", "").strip()
    if role is None or not uri or Reader(env).given("THUMBX_SESSION_NAME"):
        return role
    try:
        task_id = ecs_task_id(fetch(uri))
    except (OSError, ValueError) as exc:
        log.warning("task_metadata_unavailable", error=str(exc), session_name=role.session_name)
        return role
    if task_id is None:
        log.warning("task_metadata_without_task_arn", session_name=role.session_name)
        return role
    return _named(role, env, session_name("worker", task_id))


def for_lambda(
    role: RoleSettings | None, env: Mapping[str, str], request_id: str | None
) -> RoleSettings | None:
    """``role`` named after this Lambda execution environment, unless a name was configured."""
    if role is None or Reader(env).given("THUMBX_SESSION_NAME"):
        return role
    identifier = lambda_environment_id(env) or request_id
    return _named(role, env, session_name("lambda", identifier)) if identifier else role
