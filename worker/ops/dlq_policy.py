"""The "DLQ operator" identity policy (pure): what ``thumbx dlq list`` and ``thumbx dlq redrive`` need.

Like the backfill, these commands run with the operator's own credentials, never ThumbXRole (whose only
SQS rights are the worker's). Attach it in the account that owns the queues (B, or A for a queue in A).

* list: ``sqs:ReceiveMessage`` and ``sqs:ChangeMessageVisibility`` on the DLQ (each message is held for
  a moment, then made visible again), ``sqs:GetQueueAttributes`` (its ARN).
* redrive: also ``sqs:DeleteMessage`` on the DLQ (only after the body was sent back),
  ``sqs:StartMessageMoveTask`` / ``sqs:ListMessageMoveTasks`` on the DLQ (SQS moves the messages itself;
  the source of a move task needs receive, delete and get-attributes, which the statements above grant),
  and ``sqs:SendMessage`` plus ``sqs:GetQueueAttributes`` on the queue.

Batch calls (``DeleteMessageBatch``, ``ChangeMessageVisibilityBatch``, ``SendMessageBatch``) are authorised
by the single-message actions in AWS; emulators check the batch names, hence the trailing wildcards, which
match nothing else in AWS. The queues are SSE-SQS encrypted: no KMS statement.
"""

from __future__ import annotations

from typing import Any

from worker.ops.policies import VERSION, Policy


def dlq_operator_policy(dlq_arn: str, queue_arn: str, *, redrive: bool = True) -> Policy:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ListDeadLetters",
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility*", "sqs:GetQueueAttributes"],
            "Resource": dlq_arn,
        }
    ]
    if redrive:
        statements += [
            {
                "Sid": "RedriveFromDeadLetters",
                "Effect": "Allow",
                "Action": ["sqs:DeleteMessage*", "sqs:StartMessageMoveTask", "sqs:ListMessageMoveTasks"],
                "Resource": dlq_arn,
            },
            {
                "Sid": "SendBackToQueue",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage*", "sqs:GetQueueAttributes"],
                "Resource": queue_arn,
            },
        ]
    return {"Version": VERSION, "Statement": statements}
