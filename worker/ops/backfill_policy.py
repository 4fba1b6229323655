"""The "backfill operator" identity policy (pure): what ``thumbx backfill`` needs, and nothing more.

The backfill runs with the operator's own credentials, not ThumbXRole: listing a bucket is not something
the worker's role may do. Attach this to the person or CI role that runs the backfill, in the account that
owns the bucket (B) — or, for a queue in A, split the SQS statement into A.

* ``s3:ListBucket`` on the bucket, limited by ``s3:prefix`` to the input and output prefixes: the scan of
  ``input/…`` and the listing of each object's thumbnail folder.
* ``s3:GetObject`` on ``thumbnails/*`` only: a HEAD of an existing thumbnail to read the
  ``thumbx-source-etag`` it records. The images themselves are never read (their ETags come from the
  listing).
* ``sqs:SendMessage`` (``SendMessageBatch`` is authorised by it; emulators check the batch name, hence the
  trailing wildcard, which matches nothing else in AWS) and ``sqs:GetQueueAttributes`` (the backlog cap).

No KMS statement: a HEAD needs no decryption, and the queues are SSE-SQS encrypted. With the deploy
templates, name this role ``BackfillRoleName`` in B's stack: the bucket policy denies every role it does
not name, and caps this one to exactly the listing and thumbnail reads above.
"""

from __future__ import annotations

from typing import Any

from worker.ops.policies import VERSION, Policy, StorageScope


def backfill_operator_policy(scope: StorageScope, queue_arn: str) -> Policy:
    bucket_arn = f"arn:{scope.partition}:s3:::{scope.bucket}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ListSourcesAndThumbnails",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [f"{scope.input_prefix}*", f"{scope.output_prefix}*"]}},
        },
        {
            "Sid": "ReadThumbnailMetadata",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{bucket_arn}/{scope.output_prefix}*",
        },
        {
            "Sid": "EnqueueBackfillEvents",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage*", "sqs:GetQueueAttributes"],
            "Resource": queue_arn,
        },
    ]
    return {"Version": VERSION, "Statement": statements}
