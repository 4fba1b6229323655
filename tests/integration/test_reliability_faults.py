"""Faults injected between the worker and the emulator by a proxy on 127.0.0.1: S3 throttling and 5xx,
an STS outage. Retries succeed, nothing is lost, no message is burned into the DLQ by an outage."""

from __future__ import annotations

import argparse
import asyncio
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest

import worker.cli.healthcheck as cmd_healthcheck
from tests.faults import INTERNAL_ERROR, SLOW_DOWN, STS_UNAVAILABLE, Fault, FaultProxy, Request
from tests.reliability import account, fresh_queue, image, queue_counts, rendered, upload
from tests.support import running_worker, wait_until, worker_settings
from worker.aws.credentials import RefreshWindows
from worker.demo.emulator import MotoEmulator
from worker.ops.provision import Deployment

pytestmark = pytest.mark.reliability

PUT_ATTEMPTS = 4  # botocore's retries={"max_attempts": 3} means 3 retries after the first attempt


async def test_s3_throttling_and_5xx_are_retried_and_nothing_is_lost(
    deployment: Deployment, moto_server: MotoEmulator
) -> None:
    fresh_queue(deployment)
    keys = [f"input/faults/{i}.jpg" for i in range(4)]
    unlucky = "input/faults/3.jpg"
    attempts: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()

    def rule(request: Request) -> Fault | None:
        if request.service != "s3":
            return None
        with lock:
            attempts[(request.method, request.path)] += 1
            n = attempts[(request.method, request.path)]
        if request.method == "GET" and "/input/" in request.path and n == 1:
            return SLOW_DOWN  # botocore's own retry gets it on the second attempt
        if request.method == "PUT" and request.path.endswith("/faults/3.jpg/lg.jpg") and n <= PUT_ATTEMPTS:
            return INTERNAL_ERROR  # every attempt of the first delivery: the message must come back
        return None

    for i, key in enumerate(keys):
        upload(deployment, key, image(1700 + i))
    with FaultProxy(moto_server.endpoint_url, rule) as proxy:
        settings = worker_settings(deployment, THUMBX_ENDPOINT_URL=proxy.url, THUMBX_RETRY_BASE_SECONDS="1")
        async with running_worker(deployment, settings=settings) as worker:
            await wait_until(lambda: all(rendered(deployment, k) for k in keys), timeout=60)
            await wait_until(lambda: queue_counts(deployment) == (0, 0), timeout=10)
    assert proxy.injected("s3") == len(keys) + PUT_ATTEMPTS, proxy.log.injected
    failed = [o for o in worker.outcomes if o.status == "transient"]
    assert [(o.key, o.reason) for o in failed] == [(unlucky, "service_unavailable")]
    assert worker.metrics.count("thumbx_messages_retried_total") == 1
    assert sorted(o.key for o in worker.outcomes if o.status == "succeeded") == sorted(keys)
    account(deployment, uploads=keys, sent=len({m.message_id for m in worker.messages}))


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def _status_becomes(url: str, status: int, timeout: float) -> None:
    """Poll from a thread: the health server runs on this event loop and must not be blocked."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (await asyncio.to_thread(_get, url))[0] != status:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{url} did not answer {status} within {timeout}s")
        await asyncio.sleep(0.2)


def _healthcheck(url: str) -> int:
    return cmd_healthcheck.run(argparse.Namespace(ready=False, url=url, timeout=5.0))


@pytest.mark.slow
async def test_sts_outage_pauses_receiving_and_recovers_without_burning_messages(
    deployment: Deployment, moto_server: MotoEmulator
) -> None:
    fresh_queue(deployment)
    outage = threading.Event()
    keys = [f"input/outage/{i}.jpg" for i in range(3)]

    def rule(request: Request) -> Fault | None:
        return STS_UNAVAILABLE if outage.is_set() and request.service == "sts" else None

    # Refresh windows longer than the session: every request needs a fresh AssumeRole, so an STS outage
    # is felt at once, as it would be an hour into a real session.
    always_refresh = RefreshWindows(advisory=4000, mandatory=4000)
    with FaultProxy(moto_server.endpoint_url, rule) as proxy:
        settings = worker_settings(
            deployment,
            THUMBX_ENDPOINT_URL=proxy.url,
            THUMBX_RETRY_BASE_SECONDS="1",
        )
        async with running_worker(deployment, settings=settings, windows=always_refresh) as worker:
            await wait_until(lambda: worker.health_port is not None, timeout=10)
            base = f"http://127.0.0.1:{worker.health_port}"
            await _status_becomes(f"{base}/readyz", 200, timeout=15)

            outage.set()
            # Not ready once a refresh has failed (after botocore's own STS retries): from then on the loop
            # does not receive until credentials come back.
            await _status_becomes(f"{base}/readyz", 503, timeout=30)
            for i, key in enumerate(keys):
                upload(deployment, key, image(1800 + i))
            await asyncio.sleep(2)
            assert queue_counts(deployment) == (len(keys), 0), "nothing was received during the outage"
            status, body = await asyncio.to_thread(_get, f"{base}/readyz")
            assert status == 503, body
            assert "credentials_unavailable" in body
            assert await asyncio.to_thread(_healthcheck, f"{base}/healthz") == 0, "alive, only not ready"
            assert await asyncio.to_thread(_healthcheck, f"{base}/readyz") == 1

            outage.clear()
            await wait_until(lambda: all(rendered(deployment, k) for k in keys), timeout=40)
            await wait_until(lambda: queue_counts(deployment) == (0, 0), timeout=10)
            await _status_becomes(f"{base}/readyz", 200, timeout=15)
            status, metrics = await asyncio.to_thread(_get, f"{base}/metrics")
    assert status == 200
    assert 'thumbx_receive_errors_total{reason="credentials_unavailable"}' in metrics
    assert "thumbx_credential_expiry_timestamp_seconds " in metrics
    assert "thumbx_render_seconds_bucket" in metrics
    assert proxy.injected("sts") >= 2
    upload_messages = [m for m in worker.messages if "outage" in m.body]
    assert sorted(m.receive_count for m in upload_messages) == [1, 1, 1], "no receive count was burned"
    account(deployment, uploads=keys, sent=len({m.message_id for m in upload_messages}))
