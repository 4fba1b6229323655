"""Poison messages go to the DLQ at once, with the reason attached, exactly once; good work goes on."""

from __future__ import annotations

import asyncio

import pytest

from tests.reliability import account, dead_letters, fresh_queue, image, queue_counts, upload
from tests.support import running_worker, wait_until, worker_settings
from tests.unit.images import lying_png
from worker.ops.provision import Deployment, admin_client

pytestmark = pytest.mark.reliability


async def test_poison_messages_are_dead_lettered_once_with_their_reason(deployment: Deployment) -> None:
    fresh_queue(deployment)
    admin_client(deployment, "sqs").send_message(QueueUrl=deployment.queue_url, MessageBody="not json {")
    upload(deployment, "input/poison/report.jpg", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
    upload(deployment, "input/poison/huge.png", lying_png(20000, 10000))  # 200 MP
    good = "input/poison/fine.jpg"
    upload(deployment, good, image(1600))
    # a short visibility timeout: a poison message that were merely retried would come back during the test
    settings = worker_settings(deployment, THUMBX_VISIBILITY_TIMEOUT="5", THUMBX_RETRY_BASE_SECONDS="1")
    async with running_worker(deployment, settings=settings) as worker:
        await wait_until(lambda: len(worker.messages) == 4, timeout=40)
        await wait_until(lambda: queue_counts(deployment) == (0, 0), timeout=10)
        await asyncio.sleep(2)  # room for any wrong redelivery to show up
    assert len(worker.messages) == 4, "no message was processed twice"
    assert worker.metrics.count("thumbx_messages_retried_total") == 0, "no retries wasted on poison"
    dead = dead_letters(deployment)
    assert sorted(d.reason for d in dead) == ["bad_json", "image_too_large", "unsupported_format"]
    by_reason = {d.reason: d for d in dead}
    assert by_reason["bad_json"].body == "not json {"
    assert by_reason["image_too_large"].attributes["thumbx-key"] == "input/poison/huge.png"
    assert "200.0 MP" in by_reason["image_too_large"].attributes["thumbx-detail"]
    assert by_reason["unsupported_format"].attributes["thumbx-key"] == "input/poison/report.jpg"
    assert len({d.attributes["thumbx-source-message-id"] for d in dead}) == 3
    account(deployment, uploads=[good], expected_dead=3, sent=4)
