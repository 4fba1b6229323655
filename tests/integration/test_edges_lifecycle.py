"""Lifecycle edges (issue 11): the last receive is dead-lettered with its reason (service and Lambda shim),
start-up waits for a role that does not exist yet, a long poll in flight at SIGTERM strands nothing, and
stderr stays JSON under a connection-drop outage. Moto over HTTP, the worker as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from lambda_shim import handler as shim
from tests.faults import CONNECTION_DROP, MID_RESPONSE_DROP, Drop, Fault, FaultProxy, Request, Truncate
from tests.lambda_payloads import FakeContext, shim_environment
from tests.reliability import (
    CountingRenderer,
    WorkerProcess,
    account,
    dead_letters,
    fresh_queue,
    image,
    queue_counts,
    rendered,
    s3_event,
    upload,
)
from tests.support import REPO, running_worker, wait_until, worker_settings
from worker.aws.s3 import S3Store, StoredObject
from worker.core.errors import ServiceUnavailable
from worker.core.presets import Preset
from worker.demo.emulator import MotoEmulator, moto_client_factory
from worker.imaging import DEFAULT_LIMITS, Limits, Rendition
from worker.ops.provision import Deployment, Names, admin_client

pytestmark = pytest.mark.reliability

MAX_RECEIVES = 2


@pytest.fixture
def names() -> Names:
    """A queue whose redrive policy moves a message after two receives."""
    return Names(max_receive_count=MAX_RECEIVES)


# --- 3. every DLQ message carries its reason ----------------------------------------------------------------


class BrokenFor(CountingRenderer):
    """The real renderer, except that an image of width ``width`` raises a bug-like error every time."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def __call__(
        self, data: bytes, presets: Sequence[Preset], limits: Limits = DEFAULT_LIMITS
    ) -> list[Rendition]:
        from tests.reliability import _width

        if _width(data) == self.width:
            raise RuntimeError("renderer bug")
        return super().__call__(data, presets, limits)


def _dlq_by_key(deployment: Deployment) -> dict[str, dict[str, str]]:
    return {d.attributes.get("thumbx-key", "?"): d.attributes for d in dead_letters(deployment)}


async def test_worker_dead_letters_the_last_receive_with_its_reason(deployment: Deployment) -> None:
    fresh_queue(deployment)
    sqs = admin_client(deployment, "sqs")
    good, buggy, corrupt, missing = (f"input/edges/{n}.jpg" for n in ("good", "buggy", "corrupt", "missing"))
    upload(deployment, good, image(2000))
    upload(deployment, buggy, image(2001))
    upload(deployment, corrupt, b"\xff\xd8 not really a jpeg")
    # an event for an object that is not there (deleted, or never readable): permanent "missing or denied"
    sqs.send_message(QueueUrl=deployment.queue_url, MessageBody=s3_event(deployment, missing, "0" * 32))
    settings = worker_settings(deployment, THUMBX_RETRY_BASE_SECONDS="1")
    async with running_worker(deployment, settings=settings, renderer=BrokenFor(2001)) as worker:
        await wait_until(lambda: len(dead_letters(deployment)) == 3, timeout=60)
        await wait_until(lambda: queue_counts(deployment) == (0, 0), timeout=20)
    dead = _dlq_by_key(deployment)
    assert {key: attrs["thumbx-reason"] for key, attrs in dead.items()} == {
        missing: "object_missing",
        buggy: "unexpected",
        corrupt: "corrupt_image",
    }
    assert "missing or denied" in dead[missing]["thumbx-detail"]
    assert "renderer bug" in dead[buggy]["thumbx-detail"]
    # permanent: dead-lettered on the first receive; transient: on the last one, not a receive later
    assert {key: attrs["thumbx-receive-count"] for key, attrs in dead.items()} == {
        missing: "1",
        buggy: str(MAX_RECEIVES),
        corrupt: "1",
    }
    receives = {key: max(m.receive_count for m in worker.messages if key in _keys(m.body)) for key in dead}
    assert receives == {missing: 1, buggy: MAX_RECEIVES, corrupt: 1}
    assert worker.metrics.count("thumbx_messages_dead_lettered_total", reason="object_missing") == 1
    account(deployment, uploads=[good], expected_dead=3, sent=4)


def _keys(body: str) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(body)


def _sqs_event_from_receive(deployment: Deployment) -> dict[str, Any]:
    """Receive like Lambda's event source mapping does, and shape the event it would invoke with."""
    got = admin_client(deployment, "sqs").receive_message(
        QueueUrl=deployment.queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=2,
        VisibilityTimeout=60,
        MessageSystemAttributeNames=["All"],
    )["Messages"]
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": deployment.queue_arn,
                "awsRegion": deployment.region,
            }
            for m in got
        ]
    }


@pytest.fixture
def function_env(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from shim_environment(deployment, monkeypatch)


def test_lambda_shim_dead_letters_the_last_receive_with_its_reason(
    deployment: Deployment, function_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh_queue(deployment)
    sqs = admin_client(deployment, "sqs")
    throttled = "input/edges/lambda-throttled.jpg"
    upload(deployment, throttled, image(2002))

    async def get_503(self: S3Store, bucket: str, key: str, **options: Any) -> StoredObject:
        raise ServiceUnavailable(f"GetObject s3://{bucket}/{key}: service error 503 (SlowDown)")

    monkeypatch.setattr(S3Store, "get", get_503)  # S3 answering 503 for this object on every attempt

    first = _sqs_event_from_receive(deployment)
    [record] = first["Records"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert shim.handler(first, FakeContext()) == {
        "batchItemFailures": [{"itemIdentifier": record["messageId"]}]
    }
    assert dead_letters(deployment) == []
    # the mapping leaves a failed record to its visibility timeout; here it comes back at once
    sqs.change_message_visibility(
        QueueUrl=deployment.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
    )

    last = _sqs_event_from_receive(deployment)
    [again] = last["Records"]
    assert again["attributes"]["ApproximateReceiveCount"] == str(MAX_RECEIVES)
    assert shim.handler(last, FakeContext()) == {"batchItemFailures": []}, "acknowledged: it is in the DLQ"
    sqs.delete_message(
        QueueUrl=deployment.queue_url, ReceiptHandle=again["receiptHandle"]
    )  # the mapping's ack
    [dead] = dead_letters(deployment)
    assert dead.reason == "service_unavailable"
    assert dead.attributes["thumbx-key"] == throttled
    assert dead.attributes["thumbx-source-message-id"] == record["messageId"]
    assert dead.attributes["thumbx-receive-count"] == str(MAX_RECEIVES)
    assert queue_counts(deployment) == (0, 0)


# --- 5. start-up without the role ---------------------------------------------------------------------------


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _healthcheck(port: int, *, ready: bool) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THUMBX_")}
    env |= {"THUMBX_HEALTH_PORT": str(port), "PYTHONPATH": str(REPO)}
    thumbx = "from worker.cli.main import main; raise SystemExit(main())"
    args = [sys.executable, "-c", thumbx, "healthcheck", *(["--ready"] if ready else [])]  # `thumbx …`
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, timeout=30, check=False).returncode


class RoleOutage:
    """The first deploy before B is ready: A's identity may not assume ThumbXRole yet (AccessDenied, as
    STS answers for a missing role or trust) and ThumbXRole does not exist. :meth:`restore` puts both
    back, unchanged."""

    def __init__(self, deployment: Deployment, moto_server: MotoEmulator) -> None:
        self.moto = moto_server
        clients = moto_client_factory(moto_server.endpoint_url, deployment.region)
        self.iam_a, self.iam_b = clients("iam", deployment.account_a), clients("iam", deployment.account_b)
        self.role = deployment.role_arn.rsplit("/", 1)[1]
        self.user = "thumbx-worker"
        moto_server.disable_iam()
        try:
            [self.user_policy] = self.iam_a.list_user_policies(UserName=self.user)["PolicyNames"]
            self.assume = self.iam_a.get_user_policy(UserName=self.user, PolicyName=self.user_policy)
            self.trust = self.iam_b.get_role(RoleName=self.role)["Role"]["AssumeRolePolicyDocument"]
            [self.role_policy] = self.iam_b.list_role_policies(RoleName=self.role)["PolicyNames"]
            self.policy = self.iam_b.get_role_policy(RoleName=self.role, PolicyName=self.role_policy)
            self.iam_a.delete_user_policy(UserName=self.user, PolicyName=self.user_policy)
            self.iam_b.delete_role_policy(RoleName=self.role, PolicyName=self.role_policy)
            self.iam_b.delete_role(RoleName=self.role)
        finally:
            moto_server.enable_iam()

    def restore(self) -> None:
        def as_json(doc: Any) -> str:
            return doc if isinstance(doc, str) else json.dumps(doc)

        self.moto.disable_iam()
        try:
            self.iam_b.create_role(RoleName=self.role, AssumeRolePolicyDocument=as_json(self.trust))
            self.iam_b.put_role_policy(
                RoleName=self.role,
                PolicyName=self.role_policy,
                PolicyDocument=as_json(self.policy["PolicyDocument"]),
            )
            self.iam_a.put_user_policy(
                UserName=self.user,
                PolicyName=self.user_policy,
                PolicyDocument=as_json(self.assume["PolicyDocument"]),
            )
        finally:
            self.moto.enable_iam()


def _start_without_role(
    deployment: Deployment, moto_server: MotoEmulator, **env: str
) -> tuple[RoleOutage, WorkerProcess, int]:
    outage = RoleOutage(deployment, moto_server)
    worker = WorkerProcess(deployment, {}, THUMBX_HEALTH_PORT="0", THUMBX_HEALTH_HOST="127.0.0.1", **env)
    worker.wait_for(lambda: worker.seen("health_server_started"), timeout=30)
    port = int(worker.seen("health_server_started")[0]["port"])
    return outage, worker, port


@pytest.mark.slow
def test_startup_waits_for_a_role_that_does_not_exist_yet(
    deployment: Deployment, moto_server: MotoEmulator
) -> None:
    fresh_queue(deployment)
    outage, worker, port = _start_without_role(deployment, moto_server)
    try:
        worker.wait_for(lambda: len(worker.seen("startup_waiting")) >= 3, timeout=60)
        assert worker.proc.poll() is None, "waiting, not exiting"
        status, body = _get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503, body
        assert "starting" in body
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        assert _healthcheck(port, ready=True) == 1
        assert _healthcheck(port, ready=False) == 0
        waits = worker.seen("startup_waiting")
        assert [w["attempt"] for w in waits[:3]] == [1, 2, 3], "one line per attempt"
        assert all(w["role_arn"] == deployment.role_arn for w in waits)
        assert waits[0]["reason"] == "credentials_unavailable"
        assert "AccessDenied" in waits[0]["error"], "why it waits is in the log"
        assert not worker.seen("worker_started")

        outage.restore()
        worker.wait_for(lambda: worker.seen("worker_started"), timeout=60)
        key = "input/edges/after-role.jpg"
        upload(deployment, key, image(2100))
        worker.wait_for(lambda: key in worker.done_keys(), timeout=40)
        worker.wait_for(lambda: _get(f"http://127.0.0.1:{port}/readyz")[0] == 200, timeout=20)
        assert _healthcheck(port, ready=True) == 0
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, worker.tail()
    finally:
        worker.kill()
    print("start-up attempts before the role existed:", len(waits), [w["reason"] for w in waits][:3])
    assert rendered(deployment, key)
    assert not worker.seen("raw"), "only JSON lines, no traceback"


@pytest.mark.slow
def test_sigterm_while_waiting_for_the_role_exits_0(
    deployment: Deployment, moto_server: MotoEmulator
) -> None:
    _outage, worker, _port = _start_without_role(deployment, moto_server)
    try:
        worker.wait_for(lambda: worker.seen("startup_waiting"), timeout=60)
        worker.signal(signal.SIGTERM)
        rc = worker.wait(timeout=20)
    finally:
        worker.kill()
    assert rc == 0, worker.tail()
    assert worker.seen("worker_stopped")
    assert not worker.seen("raw"), worker.tail()


# --- 6. stop without stranding ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_long_poll_in_flight_at_sigterm_strands_nothing(
    deployment: Deployment, moto_server: MotoEmulator
) -> None:
    fresh_queue(deployment)
    polling = threading.Event()

    def rule(request: Request) -> Fault | None:
        if request.action == "ReceiveMessage" and deployment.queue_url.encode() in request.body:
            polling.set()
        return None

    with FaultProxy(moto_server.endpoint_url, rule) as proxy:
        worker = WorkerProcess(
            deployment,
            {},
            THUMBX_ENDPOINT_URL=proxy.url,
            THUMBX_WAIT_SECONDS="10",  # a long poll that is still open when SIGTERM arrives
            THUMBX_VISIBILITY_TIMEOUT="120",  # long: only a release makes a message visible again soon
            THUMBX_SHUTDOWN_SECONDS="15",
        )
        try:
            worker.wait_for(lambda: worker.seen("worker_started") and polling.is_set(), timeout=60)
            worker.signal(signal.SIGTERM)
            worker.wait_for(lambda: worker.seen("stop_requested"), timeout=10)
            # the open poll gets these: SQS hides them for its visibility timeout and counts a receive
            admin_client(deployment, "sqs").send_message_batch(
                QueueUrl=deployment.queue_url,
                Entries=[{"Id": str(i), "MessageBody": f'{{"late": {i}}}'} for i in range(3)],
            )
            rc = worker.wait(timeout=30)
        finally:
            worker.kill()
    assert rc == 0, worker.tail()
    # visible again at once, not 120 s later; each spent one receive, on the stopping worker only
    assert queue_counts(deployment) == (3, 0), worker.tail()
    [released] = worker.seen("released_received_after_stop")
    assert released["message_ids"], "the poll returned messages after stop began"
    got = admin_client(deployment, "sqs").receive_message(
        QueueUrl=deployment.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    counts = {m["MessageId"]: int(m["Attributes"]["ApproximateReceiveCount"]) for m in got}
    assert {counts[mid] for mid in released["message_ids"]} == {2}
    assert not worker.seen("handle_failed")


# --- 7. JSON logs only ------------------------------------------------------------------------------------


def _settled(worker: WorkerProcess, key: str) -> bool:
    """A message for ``key`` was acknowledged or dead-lettered (not merely retried)."""
    return any(
        e["fate"] != "retry" and any(r["key"] == key for r in e["records"])
        for e in worker.seen("message_done")
    )


@pytest.mark.slow
@pytest.mark.parametrize("names", [Names()])  # the default redrive (5): the outage must not exhaust it
def test_stderr_is_only_json_under_a_connection_drop_outage(
    deployment: Deployment, moto_server: MotoEmulator
) -> None:
    fresh_queue(deployment)
    dropping = threading.Event()
    dropping.set()

    def rule(request: Request) -> Fault | Drop | Truncate | None:
        if not dropping.is_set():
            return None
        if request.service == "s3":  # bodies cut halfway (aiohttp's own errors), or no answer at all
            return MID_RESPONSE_DROP if request.method == "GET" else CONNECTION_DROP
        if request.action in ("DeleteMessageBatch", "ChangeMessageVisibilityBatch"):
            return MID_RESPONSE_DROP
        return None

    good, truncated = "input/edges/json-good.jpg", "input/edges/json-truncated.jpg"
    whole = image(2200)
    with FaultProxy(moto_server.endpoint_url, rule) as proxy:
        worker = WorkerProcess(
            deployment,
            {},
            THUMBX_ENDPOINT_URL=proxy.url,
            THUMBX_RETRY_BASE_SECONDS="1",
            THUMBX_VISIBILITY_TIMEOUT="5",  # a message whose retry could not be set comes back soon
            THUMBX_CONCURRENCY="4",
        )
        try:
            worker.wait_for(lambda: worker.seen("worker_started"), timeout=60)
            upload(deployment, good, whole)
            upload(deployment, truncated, whole[: len(whole) * 2 // 3])  # libvips warns: premature end
            # the outage lasts until both uploads have failed on it once
            worker.wait_for(lambda: len(worker.seen("message_done", fate="retry")) >= 2, timeout=60)
            dropping.clear()
            worker.wait_for(lambda: good in worker.done_keys(), timeout=60)
            worker.wait_for(lambda: _settled(worker, truncated), timeout=60)
            worker.signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
        finally:
            worker.kill()
    raw = worker.seen("raw")
    print(f"{len(worker.events)} stderr lines, {proxy.injected()} connections dropped or cut")
    assert raw == [], "\n".join(r["line"] for r in raw[:20])
    assert not worker.seen("asyncio_unhandled_exception"), worker.seen("asyncio_unhandled_exception")[:2]
    reasons = {
        r["reason"] for e in worker.seen("message_done") for r in e["records"] if r["status"] == "transient"
    }
    assert "unexpected" not in reasons, "a dropped connection is an outage, not a bug"
    assert "service_unavailable" in reasons
    assert any(e.get("logger") == "pyvips" for e in worker.events), "libvips' warning came through, as JSON"
    assert rendered(deployment, good)
