from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from tests.faults import MID_RESPONSE_DROP, FaultProxy
from tests.reliability import WorkerProcess, fresh_queue, image, upload
from worker.provision import Deployment


@pytest.mark.parametrize("services", [("s3", "sqs")])
def test_drop(deployment: Deployment, moto_server, services) -> None:
    fresh_queue(deployment)
    dropping = threading.Event()
    def rule(request):
        return MID_RESPONSE_DROP if dropping.is_set() and request.service in services else None
    def unread(request):
        return dropping.is_set() and request.service in services and request.method in ("PUT",)
    with FaultProxy(moto_server.endpoint_url, rule, unread=unread) as proxy:
        worker = WorkerProcess(deployment, {}, THUMBX_ENDPOINT_URL=proxy.url, THUMBX_RETRY_BASE_SECONDS="1")
        try:
            worker.wait_for(lambda: worker.seen("worker_started"), timeout=60)
            dropping.set()
            for i in range(10):
                upload(deployment, f"input/d/{i}.jpg", image(2300 + i))
            time.sleep(15)
            dropping.clear()
            time.sleep(5)
            worker.signal(signal.SIGTERM)
            worker.wait(timeout=30)
        finally:
            worker.kill()
    raw = worker.seen("raw")
    print("SERVICES", services, "lines", len(worker.events), "raw", len(raw), "injected", proxy.injected())
    for r in raw[:40]:
        print("RAW", r["line"])
    from collections import Counter
    print(Counter(e.get("event") for e in worker.events))
    for e in worker.events:
        if True:
            print("EV", json.dumps(e)[:400])
