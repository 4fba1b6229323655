"""The container image's entry point for real: `python -m awslambdaric lambda_shim.handler.handler`.

A small fake of Lambda's Runtime API on loopback hands the runtime interface client real-shaped events
with a deadline header, exactly as Lambda does, and collects what the handler answers. This checks what
the in-process tests cannot: the real context object (remaining time from the deadline), JSON
marshalling of the response, and one process serving several invocations warm.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.lambda_payloads import OUTPUTS_PER_UPLOAD, dead_letters, message_ids, outputs, sqs_event_for_keys
from tests.support import jpeg_bytes
from worker.ops.provision import Deployment, admin_client

pytest.importorskip("awslambdaric", reason="awslambdaric (the runtime interface client) is not installed")
API = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:111111111111:function:thumbx"


class FakeRuntimeApi:
    """Serves queued invocations on GET .../invocation/next and records responses and errors."""

    def __init__(self) -> None:
        self.pending: queue.Queue[tuple[str, dict[str, Any], int]] = queue.Queue()
        self.answers: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != f"{API}/invocation/next":
                    self._reply(404, b"{}")
                    return
                try:
                    request_id, event, budget_ms = api.pending.get(timeout=60)
                except queue.Empty:
                    self._reply(500, b"{}")
                    return
                body = json.dumps(event).encode()
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + budget_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                }
                self._reply(200, body, headers)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = self.rfile.read(length).decode()
                parts = self.path.removeprefix(API + "/").split("/")
                if parts[0] == "invocation" and len(parts) == 3:
                    api.answers.put((parts[1], parts[2], json.loads(payload or "null")))
                else:
                    api.answers.put(("-", "/".join(parts), payload))
                self._reply(202, b"{}")

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def invoke(self, event: dict[str, Any], budget_ms: int = 300_000) -> tuple[str, Any]:
        request_id = str(uuid.uuid4())
        self.pending.put((request_id, event, budget_ms))
        answered_id, kind, payload = self.answers.get(timeout=60)
        assert answered_id == request_id, (answered_id, kind, payload)
        return kind, payload


@pytest.fixture
def runtime_api() -> Iterator[FakeRuntimeApi]:
    api = FakeRuntimeApi()
    api.thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()


@pytest.fixture
def function(deployment: Deployment, runtime_api: FakeRuntimeApi) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "THUMBX_"))}
    env |= deployment.worker_env() | {
        "AWS_LAMBDA_RUNTIME_API": runtime_api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "thumbx",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",
        "THUMBX_LAMBDA_SAFETY_MS": "10000",
        "THUMBX_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "awslambdaric", "lambda_shim.handler.handler"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def test_runtime_interface_client_runs_the_shim_warm_with_the_real_context(
    deployment: Deployment, shared: Path, runtime_api: FakeRuntimeApi, function: subprocess.Popen[bytes]
) -> None:
    s3 = admin_client(deployment, "s3")
    for name in ("ric-1", "ric-2", "ric-3"):
        s3.put_object(Bucket=deployment.bucket, Key=f"input/{name}.jpg", Body=jpeg_bytes(640, 480))

    first = sqs_event_for_keys(shared, deployment, ["input/ric-1.jpg", "input/ric-missing.jpg"])
    kind, payload = runtime_api.invoke(first)
    assert (kind, payload) == ("response", {"batchItemFailures": []})  # the missing one: dead-lettered
    assert len(outputs(deployment, "thumbnails/ric-1.jpg/")) == OUTPUTS_PER_UPLOAD
    [dead] = dead_letters(deployment)
    assert dead["MessageAttributes"]["thumbx-reason"]["StringValue"] == "object_missing"

    # the same process, warm: the deadline header drives the time guard through the real context
    hurried = sqs_event_for_keys(shared, deployment, ["input/ric-2.jpg"])
    kind, payload = runtime_api.invoke(hurried, budget_ms=3_000)
    assert (kind, payload) == (
        "response",
        {"batchItemFailures": [{"itemIdentifier": message_ids(hurried)[0]}]},
    )
    assert outputs(deployment, "thumbnails/ric-2.jpg/") == {}

    kind, payload = runtime_api.invoke(sqs_event_for_keys(shared, deployment, ["input/ric-3.jpg"]))
    assert (kind, payload) == ("response", {"batchItemFailures": []})
    assert len(outputs(deployment, "thumbnails/ric-3.jpg/")) == OUTPUTS_PER_UPLOAD
    assert function.poll() is None, "one process served every invocation"
