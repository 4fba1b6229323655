"""Upload into account B -> thumbnails in B, written by A's worker through ThumbXRole (IAM enforced)."""

from __future__ import annotations

import io

from PIL import Image

from tests.support import jpeg_bytes, running_worker, wait_until
from worker.ops.provision import Deployment, admin_client


async def test_upload_becomes_thumbnails_owned_by_b(e2e_deployment: Deployment) -> None:
    deployment = e2e_deployment
    s3 = admin_client(deployment, "s3")
    s3.put_object(Bucket=deployment.bucket, Key="input/holiday photo+1.jpg", Body=jpeg_bytes(1600, 1200))
    async with running_worker(deployment) as worker:
        await wait_until(lambda: worker.outcome_for("input/holiday photo+1.jpg") is not None)
    outcome = worker.outcome_for("input/holiday photo+1.jpg")
    assert outcome is not None
    assert outcome.status == "succeeded", outcome
    expected = {
        "thumbnails/holiday photo+1.jpg/sm.webp": ("image/webp", 128),
        "thumbnails/holiday photo+1.jpg/md.jpg": ("image/jpeg", 512),
        "thumbnails/holiday photo+1.jpg/lg.jpg": ("image/jpeg", 1024),
    }
    assert set(outcome.outputs) == set(expected) | {"thumbnails/holiday photo+1.jpg/manifest.json"}
    bucket_owner = s3.get_bucket_acl(Bucket=deployment.bucket)["Owner"]["ID"]  # account B's canonical id
    for key, (content_type, longest) in expected.items():
        got = s3.get_object(Bucket=deployment.bucket, Key=key)
        assert got["ContentType"] == content_type
        assert got["Metadata"]["thumbx-preset"] in key
        assert max(Image.open(io.BytesIO(got["Body"].read())).size) == longest
        acl = s3.get_object_acl(Bucket=deployment.bucket, Key=key)
        assert acl["Owner"]["ID"] == bucket_owner, "objects are owned by the bucket owner (no ACL sent)"
    # the message was deleted once every output was written
    sqs = admin_client(deployment, "sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=deployment.queue_url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
