"""Assumed-role credentials refresh themselves: no failed request across refreshes, one STS call each."""

from __future__ import annotations

import asyncio

from tests.support import jpeg_bytes, running_worker, wait_until, worker_base_session, worker_settings
from worker.aws.credentials import RefreshWindows, assumed_role_session
from worker.ops.provision import Deployment, admin_client

# 900-second sessions (the STS minimum) with windows that make them "due" after about a second.
SHORT = RefreshWindows(advisory=899, mandatory=898)


async def test_worker_keeps_processing_across_refreshes(deployment: Deployment) -> None:
    s3 = admin_client(deployment, "s3")
    settings = worker_settings(deployment, THUMBX_SESSION_SECONDS="900")
    keys = [f"input/batch-{i}.jpg" for i in range(6)]
    async with running_worker(deployment, settings=settings, windows=SHORT) as worker:
        for key in keys:
            s3.put_object(Bucket=deployment.bucket, Key=key, Body=jpeg_bytes(320, 240))
            await asyncio.sleep(0.8)
        await wait_until(lambda: all(worker.outcome_for(k) is not None for k in keys), timeout=40)
    outcomes = [worker.outcome_for(k) for k in keys]
    assert [o.status for o in outcomes if o] == ["succeeded"] * len(keys)
    assert worker.metrics.count("thumbx_records_total", status="transient") == 0
    assert worker.metrics.count("thumbx_receive_errors_total") == 0
    refreshes = worker.metrics.count("thumbx_credential_refreshes_total")
    assert refreshes >= 3, f"initial assume + at least two refreshes expected, saw {refreshes}"


async def test_concurrent_requests_share_one_refresh(deployment: Deployment) -> None:
    settings = worker_settings(deployment, THUMBX_SESSION_SECONDS="900")
    assert settings.role is not None
    role = await assumed_role_session(
        worker_base_session(deployment),
        settings.role,
        region=deployment.region,
        endpoint_url=deployment.endpoint,
        windows=SHORT,
    )
    assert role.stats.refreshes == 1
    await asyncio.sleep(2.2)  # now inside the mandatory window: every caller must wait for fresh creds
    async with role.session.client("s3", endpoint_url=deployment.endpoint) as s3:
        admin_client(deployment, "s3").put_object(Bucket=deployment.bucket, Key="input/x.jpg", Body=b"x")
        results = await asyncio.gather(
            *(s3.get_object(Bucket=deployment.bucket, Key="input/x.jpg") for _ in range(25))
        )
    assert all(r["ResponseMetadata"]["HTTPStatusCode"] == 200 for r in results)
    assert role.stats.refreshes == 2, "25 concurrent requests, one STS call"
