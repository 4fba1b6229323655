"""Helpers for the reliability tests: slow/counting renderers, a subprocess worker, and the ledger.

Every reliability test ends with :func:`account`: each message the test sent is either rendered (all of
its outputs exist, stamped with the source's ETag), in the DLQ with a ``thumbx-reason``, or deliberately
ignored, and the three add up to what was sent.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from tests.support import REPO, jpeg_bytes
from worker.core.presets import Preset
from worker.imaging import DEFAULT_LIMITS, Limits, Rendition, render
from worker.ops.provision import Deployment, admin_client

PRESET_NAMES = ("sm.webp", "md.jpg", "lg.jpg")


# --- renderers ------------------------------------------------------------------------------------------


class CountingRenderer:
    """The real renderer, counting calls per source (by digest) and sleeping per image width if asked."""

    def __init__(self, delays: Mapping[int, float] | None = None, default_delay: float = 0.0) -> None:
        self.delays = dict(delays or {})
        self.default_delay = default_delay
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(
        self, data: bytes, presets: Sequence[Preset], limits: Limits = DEFAULT_LIMITS
    ) -> list[Rendition]:
        with self._lock:
            self.calls[hashlib.sha256(data).hexdigest()] += 1
        delay = self.delays.get(_width(data), self.default_delay)
        if delay:
            time.sleep(delay)
        return render(data, presets, limits)

    def count(self, data: bytes) -> int:
        with self._lock:
            return self.calls[hashlib.sha256(data).hexdigest()]


def _width(data: bytes) -> int:
    try:
        return Image.open(io.BytesIO(data)).size[0]
    except Exception:
        return -1


# --- the queue and the bucket, seen by account B's admin ------------------------------------------------


def fresh_queue(deployment: Deployment) -> None:
    """Drop what provisioning left on the queue (the s3:TestEvent) so a test counts only its own messages."""
    admin_client(deployment, "sqs").purge_queue(QueueUrl=deployment.queue_url)


def queue_counts(deployment: Deployment, url: str | None = None) -> tuple[int, int]:
    """(visible, in flight) for the main queue or ``url``."""
    attrs = admin_client(deployment, "sqs").get_queue_attributes(
        QueueUrl=url or deployment.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def queue_debug(deployment: Deployment) -> list[tuple[str, int, bool, str]]:
    """What moto (in this process) holds on the main queue: body start, receive count, visible, id."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[deployment.account_b][deployment.region].queues[
        deployment.queue_url.rsplit("/", 1)[1]
    ]
    return [(m.body[:80], m.approximate_receive_count, m.visible, m.id) for m in queue._messages]


@dataclass(frozen=True)
class DeadLetter:
    body: str
    attributes: dict[str, str]

    @property
    def reason(self) -> str:
        return self.attributes.get("thumbx-reason", "")


def dead_letters(deployment: Deployment) -> list[DeadLetter]:
    """Everything on the DLQ, left there: read once each under a long visibility, then made visible again."""
    sqs = admin_client(deployment, "sqs")
    found: list[DeadLetter] = []
    handles: list[str] = []
    for _ in range(20):
        got = sqs.receive_message(
            QueueUrl=deployment.dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=300,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            break
        for m in got:
            handles.append(m["ReceiptHandle"])
            attributes = {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
            found.append(DeadLetter(m["Body"], attributes))
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=deployment.dlq_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return found


def upload(deployment: Deployment, key: str, data: bytes, metadata: dict[str, str] | None = None) -> str:
    response = admin_client(deployment, "s3").put_object(
        Bucket=deployment.bucket, Key=key, Body=data, Metadata=metadata or {}
    )
    return str(response["ETag"]).strip('"')


def rendered(deployment: Deployment, key: str) -> bool:
    """Every output of ``key`` exists and carries the source's current ETag."""
    s3 = admin_client(deployment, "s3")
    etag = str(s3.head_object(Bucket=deployment.bucket, Key=key)["ETag"]).strip('"')
    rel = key.removeprefix(deployment.input_prefix)
    for name in PRESET_NAMES:
        try:
            head = s3.head_object(Bucket=deployment.bucket, Key=f"{deployment.output_prefix}{rel}/{name}")
        except s3.exceptions.ClientError:
            return False
        if head["Metadata"].get("thumbx-source-etag") != etag:
            return False
    return True


def output_keys(deployment: Deployment) -> list[str]:
    s3 = admin_client(deployment, "s3")
    listing = s3.list_objects_v2(Bucket=deployment.bucket, Prefix=deployment.output_prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def s3_event(deployment: Deployment, key: str, etag: str, *, size: int = 0) -> str:
    """A real-shaped S3 ObjectCreated notification body (key encoded with quote_plus, as S3 does)."""
    from urllib.parse import quote_plus

    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": deployment.region,
        "eventTime": "2026-11-28T00:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": deployment.bucket, "arn": f"arn:aws:s3:::{deployment.bucket}"},
            "object": {"key": quote_plus(key), "size": size, "eTag": etag},
        },
    }
    return json.dumps({"Records": [record]})


@dataclass
class Ledger:
    sent: int
    rendered: set[str] = field(default_factory=set)
    dead: list[DeadLetter] = field(default_factory=list)
    ignored: set[str] = field(default_factory=set)

    @property
    def accounted(self) -> int:
        return len(self.rendered) + len(self.dead) + len(self.ignored)


def account(
    deployment: Deployment,
    *,
    uploads: Iterable[str],
    expected_dead: int = 0,
    ignored: Iterable[str] = (),
    sent: int,
) -> Ledger:
    """Check every sent message is rendered, dead-lettered (with a reason) or ignored on purpose, exactly.

    ``sent`` is counted apart from the other arguments (messages put on the queue, or distinct message ids
    the workers received), so a message lost or made up on the way shows as a difference.
    """
    uploads = list(uploads)
    ledger = Ledger(sent=sent)
    ledger.rendered = {key for key in uploads if rendered(deployment, key)}
    ledger.dead = dead_letters(deployment)
    ledger.ignored = set(ignored)
    assert all(d.reason for d in ledger.dead), f"a DLQ message has no thumbx-reason: {ledger.dead}"
    assert len(ledger.dead) == expected_dead, f"DLQ holds {[d.reason for d in ledger.dead]}"
    assert ledger.rendered == set(uploads), f"not rendered: {set(uploads) - ledger.rendered}"
    assert queue_counts(deployment) == (0, 0), f"left on the main queue: {queue_debug(deployment)}"
    assert ledger.accounted == ledger.sent, ledger
    return ledger


# --- a real worker process ------------------------------------------------------------------------------


class WorkerProcess:
    """``python -m tests.slow_worker`` (the real `thumbx worker` with a slow renderer) as a subprocess."""

    def __init__(self, deployment: Deployment, delays: Mapping[int, float], **overrides: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "THUMBX_"))}
        env |= deployment.worker_env() | {
            "THUMBX_WAIT_SECONDS": "1",
            "THUMBX_HEALTH_PORT": "off",
            "THUMBX_LOG_FORMAT": "json",
            "THUMBX_TEST_RENDER_DELAYS": json.dumps({str(k): v for k, v in delays.items()}),
            "PYTHONPATH": str(REPO),
        }
        env |= overrides
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.slow_worker"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "raw", "line": line.rstrip()}
            with self._lock:
                self.events.append(event)

    def seen(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("event") == event and fields.items() <= e.items()]

    def done_keys(self) -> set[str]:
        return {
            record["key"]
            for event in self.seen("message_done", fate="delete")
            for record in event.get("records", [])
        }

    def wait_for(self, predicate: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s: {self.tail()}")
            time.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return rc

    def tail(self, n: int = 15) -> str:
        with self._lock:
            return "\n".join(json.dumps(e) for e in self.events[-n:])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def image(width: int) -> bytes:
    """A small JPEG whose width identifies it to the slow renderer."""
    return jpeg_bytes(width, 600, color=(width % 256, 90, 160))
