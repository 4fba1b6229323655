"""Per-task session names and source identities (what B's CloudTrail shows), from the real sources."""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from structlog.testing import capture_logs

from worker.aws import attribution
from worker.core.config import load_settings
from worker.ops.policies import SESSION_PATTERN

TASK_ID = "8f0e1c2d3b4a59687f6e5d4c3b2a1900"
ENV = {
    "THUMBX_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/111111111111/thumbx-events",
    "THUMBX_BUCKET": "photos",
    "THUMBX_ROLE_ARN": "arn:aws:iam::222222222222:role/ThumbXRole",
}


@pytest.fixture
def metadata_endpoint() -> Iterator[str]:
    """The ECS agent's task metadata endpoint (v4), as a real HTTP server on loopback."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/v4/abc-123/task":
                self.send_error(404)
                return
            body = json.dumps(
                {"Cluster": "thumbx", "TaskARN": f"arn:aws:ecs:eu-west-1:111111111111:task/thumbx/{TASK_ID}"}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v4/abc-123"
    server.shutdown()
    server.server_close()


def test_each_ecs_task_assumes_the_role_under_its_own_name(metadata_endpoint: str) -> None:
    env = {**ENV, "ECS_CONTAINER_METADATA_URI_V4": metadata_endpoint}
    role = attribution.for_ecs_task(load_settings(env).role, env)
    assert role is not None
    assert role.session_name == role.source_identity == f"thumbx-worker-{TASK_ID}"
    assert fnmatch.fnmatchcase(role.session_name, SESSION_PATTERN)  # the trust admits it
    assert len(role.session_name) <= 64


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:ecs:eu-west-1:111111111111:task/thumbx/{TASK_ID}",  # long ARN format
        f"arn:aws:ecs:eu-west-1:111111111111:task/{TASK_ID}",  # old format, no cluster
    ],
)
def test_task_id_from_either_task_arn_format(arn: str) -> None:
    assert attribution.ecs_task_id({"TaskARN": arn}) == TASK_ID


def test_configured_names_win_and_a_source_identity_of_its_own_is_kept(metadata_endpoint: str) -> None:
    env = {**ENV, "ECS_CONTAINER_METADATA_URI_V4": metadata_endpoint, "THUMBX_SESSION_NAME": "thumbx-batch"}
    role = attribution.for_ecs_task(load_settings(env).role, env)
    assert role is not None
    assert role.session_name == "thumbx-batch"
    env = {**ENV, "ECS_CONTAINER_METADATA_URI_V4": metadata_endpoint, "THUMBX_SOURCE_IDENTITY": "thumbx-ops"}
    role = attribution.for_ecs_task(load_settings(env).role, env)
    assert role is not None
    assert (role.session_name, role.source_identity) == (f"thumbx-worker-{TASK_ID}", "thumbx-ops")


def test_without_metadata_the_default_name_stays_and_the_failure_is_logged() -> None:
    env = {**ENV, "ECS_CONTAINER_METADATA_URI_V4": "http://127.0.0.1:9/v4/gone"}  # nothing listens on 9
    default = load_settings(env).role
    with capture_logs() as logs:
        role = attribution.for_ecs_task(default, env)
    assert role == default
    assert role is not None
    assert role.session_name == "thumbx-worker"
    assert [entry["event"] for entry in logs] == ["task_metadata_unavailable"]
    assert attribution.for_ecs_task(default, ENV) == default  # not on ECS: nothing to ask
    assert attribution.for_ecs_task(None, env) is None  # no role, no session


def _lambda_role(env: Mapping[str, str], request_id: str | None) -> Any:
    return attribution.for_lambda(load_settings({**ENV, **env}).role, {**ENV, **env}, request_id)


def test_each_lambda_environment_has_its_own_name() -> None:
    stream = "2026/11/30/[$LATEST]0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    role = _lambda_role({"AWS_LAMBDA_LOG_STREAM_NAME": stream}, "c6af9ac6-7b61-11e6-9a41-93e812345678")
    assert role.session_name == role.source_identity == "thumbx-lambda-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    role = _lambda_role({}, "c6af9ac6-7b61-11e6-9a41-93e812345678")  # no log stream: the request id
    assert role.session_name == "thumbx-lambda-c6af9ac6-7b61-11e6-9a41-93e812345678"
    assert fnmatch.fnmatchcase(role.session_name, SESSION_PATTERN)
    assert _lambda_role({"THUMBX_SESSION_NAME": "thumbx-spike"}, "r-1").session_name == "thumbx-spike"


def test_names_are_cut_to_what_sts_accepts() -> None:
    name = attribution.session_name("lambda", "a/b:c" + "x" * 80)
    assert name.startswith("thumbx-lambda-a-b-c")
    assert len(name) == 64


def test_the_templates_leave_the_session_name_to_the_worker() -> None:
    from tools.deploy_render import DEPLOY_DIR

    text = (DEPLOY_DIR / "compute-account.yaml").read_text(encoding="utf-8")
    assert "THUMBX_SESSION_NAME" not in text  # a fixed name would give every task the same identity
