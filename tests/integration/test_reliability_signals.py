"""ECS stops tasks with SIGTERM, then SIGKILL: the worker as a real subprocess (`thumbx worker` code path)."""

from __future__ import annotations

import signal
import time

import pytest

from tests.reliability import (
    WorkerProcess,
    account,
    fresh_queue,
    image,
    queue_counts,
    rendered,
    upload,
)
from tests.support import running_worker, wait_until
from worker.ops.provision import Deployment

pytestmark = pytest.mark.reliability

SHUTDOWN_SECONDS = 4


@pytest.mark.slow
async def test_sigterm_mid_render_exits_0_in_time_and_returns_unfinished_at_once(
    deployment: Deployment,
) -> None:
    fresh_queue(deployment)
    fast, stuck, finishing = "input/sig/fast.jpg", "input/sig/stuck.jpg", "input/sig/finishing.jpg"
    upload(deployment, fast, image(1000))
    upload(deployment, stuck, image(1001))
    upload(deployment, finishing, image(1002))
    worker = WorkerProcess(
        deployment,
        delays={1001: 120.0, 1002: 2.0},  # stuck: far past any deadline; finishing: well inside it
        THUMBX_SHUTDOWN_SECONDS=str(SHUTDOWN_SECONDS),
        THUMBX_VISIBILITY_TIMEOUT="60",  # long: only the release can make `stuck` visible again soon
        THUMBX_CONCURRENCY="4",
        THUMBX_RENDER_THREADS="3",
    )
    try:
        worker.wait_for(
            lambda: (
                fast in worker.done_keys()
                and worker.seen("test_render_started", width=1001)
                and worker.seen("test_render_started", width=1002)
            ),
            timeout=40,
        )
        assert finishing not in worker.done_keys()
        sent_at = time.monotonic()
        worker.signal(signal.SIGTERM)
        rc = worker.wait(timeout=SHUTDOWN_SECONDS + 10)
        elapsed = time.monotonic() - sent_at
    finally:
        worker.kill()
    print(f"SIGTERM -> exit {rc} in {elapsed:.2f}s (deadline {SHUTDOWN_SECONDS}s)")
    assert rc == 0, worker.tail()
    assert elapsed <= SHUTDOWN_SECONDS + 1.5, f"took {elapsed:.1f}s to stop"
    # in-flight work that could finish did, and was deleted; the stuck one is visible again at once
    assert finishing in worker.done_keys()
    assert rendered(deployment, fast)
    assert rendered(deployment, finishing)
    assert not rendered(deployment, stuck)
    assert queue_counts(deployment) == (1, 0)
    assert worker.seen("released_unfinished")
    # a new worker finishes the returned message: every upload is accounted for
    async with running_worker(deployment) as fresh:
        await wait_until(lambda: fresh.outcome_for(stuck) is not None, timeout=30)
    account(deployment, uploads=[fast, stuck, finishing], sent=3)  # one notification per upload


@pytest.mark.slow
async def test_sigkill_mid_batch_then_new_worker_loses_nothing(deployment: Deployment) -> None:
    fresh_queue(deployment)
    keys = [f"input/kill/{i}.jpg" for i in range(5)]
    for i, key in enumerate(keys):
        upload(deployment, key, image(1100 + i))
    worker = WorkerProcess(
        deployment,
        delays={1100 + i: 1.0 for i in range(5)},
        THUMBX_VISIBILITY_TIMEOUT="5",
        THUMBX_CONCURRENCY="3",
        THUMBX_RENDER_THREADS="3",
    )
    try:
        worker.wait_for(lambda: len(worker.done_keys()) >= 2, timeout=40)
        worker.signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        worker.kill()
    done_before = worker.done_keys()
    assert len(done_before) < len(keys), "the kill came too late to be mid-batch"
    async with running_worker(deployment) as fresh:
        await wait_until(lambda: all(rendered(deployment, k) for k in keys), timeout=40)
        try:
            await wait_until(lambda: queue_counts(deployment) == (0, 0), timeout=10)
        except AssertionError:
            print(
                "COUNTS", queue_counts(deployment), [(m.message_id, m.receive_count) for m in fresh.messages]
            )
            print("KILLED", worker.tail(60))
            raise
    redelivered = [m for m in fresh.messages if m.receive_count >= 2]
    assert redelivered, "messages held by the killed worker came back"
    account(deployment, uploads=keys, sent=len(keys))  # one notification per upload
