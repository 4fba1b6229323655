"""Issue 13 parts 2 and 3 against the moto server over HTTP, with IAM enforced.

* A manifest per upload (``thumbnails/<path>/manifest.json``): what it says matches the objects beside it,
  it is the completion marker, its bytes are the same on a re-render, it can be switched off, and the
  backfill treats a missing or older-schema manifest as not up to date.
* The exact object version, in order: with versioning on, an event renders exactly the version it names,
  and an event older (by ``sequencer``) than what was rendered is acknowledged as ``stale_event`` without
  touching the newer thumbnails. moto's own notifications carry neither ``versionId`` nor ``sequencer``,
  so those events are sent in the shape S3 sends them.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from PIL import Image

from tests.integration.test_backfill import operator_session
from tests.reliability import fresh_queue, image, output_keys, queue_counts, s3_event, upload
from tests.support import RunningWorker, jpeg_bytes, running_worker, wait_until, worker_settings
from tests.unit.test_placeholders import header
from worker.cli.backfill import run_backfill
from worker.core.config import Settings
from worker.ops.backfill import BackfillPlan
from worker.ops.provision import Deployment, admin_client

KEY = "input/photos/cat.jpg"
MANIFEST = "thumbnails/photos/cat.jpg/manifest.json"


def send(deployment: Deployment, body: str) -> None:
    admin_client(deployment, "sqs").send_message(QueueUrl=deployment.queue_url, MessageBody=body)


def versioned_event(deployment: Deployment, key: str, etag: str, version_id: str, sequencer: str) -> str:
    """An S3 ObjectCreated record as a versioned bucket sends it: with versionId and sequencer."""
    doc = json.loads(s3_event(deployment, key, etag))
    doc["Records"][0]["s3"]["object"] |= {"versionId": version_id, "sequencer": sequencer}
    return json.dumps(doc)


def no_notifications(deployment: Deployment) -> None:
    """Events are sent by the test alone (moto's would lack versionId and sequencer)."""
    admin_client(deployment, "s3").put_bucket_notification_configuration(
        Bucket=deployment.bucket, NotificationConfiguration={}
    )
    fresh_queue(deployment)


def get(deployment: Deployment, key: str) -> tuple[bytes, dict[str, Any]]:
    response = admin_client(deployment, "s3").get_object(Bucket=deployment.bucket, Key=key)
    return response["Body"].read(), response


def width_of(deployment: Deployment, key: str) -> int:
    return Image.open(io.BytesIO(get(deployment, key)[0])).size[0]


async def settle(worker: RunningWorker, deployment: Deployment, outcomes: int) -> None:
    await wait_until(lambda: len(worker.outcomes) >= outcomes, timeout=40)
    await wait_until(lambda: queue_counts(deployment) == (0, 0), timeout=15)


# --- 2. the manifest ----------------------------------------------------------------------------------------


async def test_the_manifest_describes_the_renditions_beside_it(deployment: Deployment) -> None:
    fresh_queue(deployment)
    source = jpeg_bytes(640, 480, orientation=6, color=(30, 160, 40))  # stored landscape, upright portrait
    etag = upload(deployment, KEY, source)  # moto's notification: no versionId, no sequencer
    async with running_worker(deployment) as worker:
        await settle(worker, deployment, 1)
    assert worker.outcomes[0].reason == "rendered"
    assert MANIFEST in worker.outcomes[0].outputs

    body, response = get(deployment, MANIFEST)
    assert response["ContentType"] == "application/json"
    assert response["Metadata"]["thumbx-manifest-schema"] == "1"
    doc = json.loads(body)
    assert doc["schema_version"] == 1
    assert doc["source"] == {
        "key": KEY,
        "etag": etag,
        "version_id": None,
        "sequencer": None,
        "format": "jpeg",
        "width": 480,
        "height": 640,
    }
    settings = worker_settings(deployment)
    planned = {p.preset.name: p for p in settings.layout.outputs(KEY, settings.presets)}
    assert set(doc["renditions"]) == set(planned)
    for name, entry in doc["renditions"].items():
        data, rendition = get(deployment, entry["key"])
        assert entry["key"] == planned[name].key
        assert entry["content_type"] == rendition["ContentType"]
        assert entry["bytes"] == len(data)
        assert (entry["width"], entry["height"]) == Image.open(io.BytesIO(data)).size
    placeholder = doc["placeholder"]
    colour = header(base64.b64decode(placeholder["thumbhash"]))
    average = [round(colour[c] * 255) for c in "rgb"]
    # the JPEG's rendering of (30, 160, 40), within ThumbHash's 6-bit DC terms
    assert all(abs(a - b) <= 6 for a, b in zip(average, (30, 160, 40), strict=True)), average
    assert colour["landscape"] is False, "the placeholder is upright too"
    dominant = tuple(int(placeholder["dominant_colour"][i : i + 2], 16) for i in (1, 3, 5))
    assert all(abs(a - b) <= 4 for a, b in zip(dominant, (30, 160, 40), strict=True)), dominant
    assert body == json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False).encode() + b"\n"


async def test_the_manifest_is_the_completion_marker_and_its_bytes_are_deterministic(
    deployment: Deployment,
) -> None:
    fresh_queue(deployment)
    etag = upload(deployment, KEY, image(700))
    s3 = admin_client(deployment, "s3")
    async with running_worker(deployment) as worker:
        await settle(worker, deployment, 1)
        first, _ = get(deployment, MANIFEST)
        # a redelivery: one HEAD of the manifest says "done"
        send(deployment, s3_event(deployment, KEY, etag))
        await settle(worker, deployment, 2)
        assert worker.outcomes[1].reason == "already_rendered"
        # without the manifest the upload is not done, even though every rendition is there
        s3.delete_object(Bucket=deployment.bucket, Key=MANIFEST)
        send(deployment, s3_event(deployment, KEY, etag))
        await settle(worker, deployment, 3)
    assert worker.outcomes[2].reason == "rendered"
    again, _ = get(deployment, MANIFEST)
    assert again == first, "the same source and presets give the same manifest bytes"


async def test_manifests_can_be_switched_off(deployment: Deployment) -> None:
    fresh_queue(deployment)
    upload(deployment, KEY, image(500))
    settings = worker_settings(deployment, THUMBX_MANIFEST="off")
    async with running_worker(deployment, settings=settings) as worker:
        await settle(worker, deployment, 1)
    assert worker.outcomes[0].reason == "rendered"
    planned = [p.key for p in settings.layout.outputs(KEY, settings.presets)]
    assert output_keys(deployment) == sorted(planned), "the renditions and nothing else"


def backfill_plan(settings: Settings) -> BackfillPlan:
    return BackfillPlan(
        bucket=settings.bucket,
        queue_url=settings.queue_url,
        layout=settings.layout,
        presets=settings.presets,
        manifest=settings.manifest,
        region=settings.region,
        dry_run=True,
    )


async def test_backfill_treats_a_missing_or_older_manifest_as_not_up_to_date(deployment: Deployment) -> None:
    fresh_queue(deployment)
    keys = ["input/m/current.jpg", "input/m/missing.jpg", "input/m/older.jpg"]
    for i, key in enumerate(keys):
        upload(deployment, key, image(300 + i))
    async with running_worker(deployment) as worker:
        await settle(worker, deployment, len(keys))
    settings = worker_settings(deployment)
    s3 = admin_client(deployment, "s3")
    s3.delete_object(Bucket=deployment.bucket, Key="thumbnails/m/missing.jpg/manifest.json")
    older = "thumbnails/m/older.jpg/manifest.json"
    metadata = s3.head_object(Bucket=deployment.bucket, Key=older)["Metadata"]
    s3.copy_object(  # what a worker of an earlier schema left behind
        Bucket=deployment.bucket,
        Key=older,
        CopySource={"Bucket": deployment.bucket, "Key": older},
        Metadata=metadata | {"thumbx-manifest-schema": "0"},
        MetadataDirective="REPLACE",
    )
    operator = operator_session(deployment)
    counts = await run_backfill(settings, backfill_plan(settings), operator)
    assert sorted(counts.would_enqueue) == ["input/m/missing.jpg", "input/m/older.jpg"]
    assert (counts.done, counts.stale) == (1, 1)
    off = worker_settings(deployment, THUMBX_MANIFEST="off")
    assert (await run_backfill(off, backfill_plan(off), operator)).would_enqueue == [], (
        "with manifests off, the renditions alone are up to date"
    )


# --- 3. the exact version, in order -------------------------------------------------------------------------


def two_versions(deployment: Deployment) -> tuple[tuple[str, str], tuple[str, str]]:
    """Versioning on, then two uploads of KEY (700 px wide, then 300 px): (etag, versionId) of each."""
    s3 = admin_client(deployment, "s3")
    s3.put_bucket_versioning(Bucket=deployment.bucket, VersioningConfiguration={"Status": "Enabled"})
    no_notifications(deployment)
    versions = []
    for width in (700, 300):
        response = s3.put_object(Bucket=deployment.bucket, Key=KEY, Body=image(width))
        versions.append((str(response["ETag"]).strip('"'), str(response["VersionId"])))
    assert versions[0][1] != versions[1][1]
    return versions[0], versions[1]


OLDER, NEWER = "0055AED6DCD90281E5", "0055AED6DCD90281F1"
LG = "thumbnails/photos/cat.jpg/lg.jpg"  # 1024-px box, never upscaled: as wide as its source


async def test_an_older_event_delivered_after_a_newer_one_is_stale(deployment: Deployment) -> None:
    (etag1, v1), (etag2, v2) = two_versions(deployment)
    async with running_worker(deployment) as worker:
        send(deployment, versioned_event(deployment, KEY, etag2, v2, NEWER))
        await settle(worker, deployment, 1)
        newer_manifest, _ = get(deployment, MANIFEST)
        send(deployment, versioned_event(deployment, KEY, etag1, v1, OLDER))
        await settle(worker, deployment, 2)
    rendered, stale = worker.outcomes
    assert (rendered.reason, stale.status, stale.reason) == ("rendered", "ignored", "stale_event")
    assert stale.detail == f"sequencer {OLDER} is older than the rendered {NEWER}"
    assert worker.metrics.count("thumbx_records_ignored_total", reason="stale_event") == 1
    assert width_of(deployment, LG) == 300, "the newer version's thumbnails stay"
    assert get(deployment, MANIFEST)[0] == newer_manifest
    head = admin_client(deployment, "s3").head_object(Bucket=deployment.bucket, Key=LG)
    assert head["Metadata"]["thumbx-source-version"] == v2
    assert head["Metadata"]["thumbx-source-sequencer"] == NEWER
    source = json.loads(newer_manifest)["source"]
    assert (source["version_id"], source["sequencer"], source["etag"]) == (v2, NEWER, etag2)


async def test_the_event_renders_exactly_its_version_and_a_late_duplicate_changes_nothing(
    deployment: Deployment,
) -> None:
    (etag1, v1), (etag2, v2) = two_versions(deployment)
    async with running_worker(deployment) as worker:
        # the first version's event, while the second is already the current object
        send(deployment, versioned_event(deployment, KEY, etag1, v1, OLDER))
        await settle(worker, deployment, 1)
        assert width_of(deployment, LG) == 700, "GetObject(VersionId): the version the event names"
        assert json.loads(get(deployment, MANIFEST)[0])["source"]["version_id"] == v1
        send(deployment, versioned_event(deployment, KEY, etag2, v2, NEWER))
        await settle(worker, deployment, 2)
        assert width_of(deployment, LG) == 300
        send(deployment, versioned_event(deployment, KEY, etag1, v1, OLDER))  # at-least-once: again
        await settle(worker, deployment, 3)
    assert [o.reason for o in worker.outcomes] == ["rendered", "rendered", "stale_event"]
    assert width_of(deployment, LG) == 300
    assert json.loads(get(deployment, MANIFEST)[0])["source"]["version_id"] == v2


async def test_events_without_version_or_sequencer_render_the_current_object(deployment: Deployment) -> None:
    (_etag1, _v1), (etag2, v2) = two_versions(deployment)
    async with running_worker(deployment) as worker:
        send(deployment, s3_event(deployment, KEY, etag2))  # neither versionId nor sequencer
        await settle(worker, deployment, 1)
    assert worker.outcomes[0].reason == "rendered"
    assert width_of(deployment, LG) == 300
    source = json.loads(get(deployment, MANIFEST)[0])["source"]
    assert (source["version_id"], source["sequencer"]) == (v2, None), "the version read is recorded"


async def test_an_event_naming_a_version_without_an_etag_heads_and_renders_that_version(
    deployment: Deployment,
) -> None:
    (etag1, v1), _newer = two_versions(deployment)
    doc = json.loads(versioned_event(deployment, KEY, etag1, v1, OLDER))
    del doc["Records"][0]["s3"]["object"]["eTag"]  # as from some EventBridge paths
    async with running_worker(deployment) as worker:
        send(deployment, json.dumps(doc))
        await settle(worker, deployment, 1)
    assert worker.outcomes[0].reason == "rendered"
    assert width_of(deployment, LG) == 700, "HeadObject(VersionId) and GetObject(VersionId) of v1"
    source = json.loads(get(deployment, MANIFEST)[0])["source"]
    assert (source["etag"], source["version_id"]) == (etag1, v1)
