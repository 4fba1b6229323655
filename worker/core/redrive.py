"""A queue's ``RedrivePolicy`` attribute: where SQS moves a message, and after how many receives (pure).

The consumer and the Lambda shim dead-letter a failure on the last receive themselves
(:mod:`worker.runtime.dead_letter`); ``thumbx doctor`` checks the policy is there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class RedrivePolicy:
    """A queue's ``RedrivePolicy`` attribute."""

    dead_letter_target_arn: str
    max_receive_count: int

    def is_last_receive(self, receive_count: int) -> bool:
        """True when SQS moves the message to the DLQ on its next receive instead of delivering it."""
        return receive_count >= self.max_receive_count


def parse_redrive(raw: str | None) -> RedrivePolicy | None:
    """A RedrivePolicy attribute (JSON); None if absent or malformed."""
    try:
        redrive = json.loads(raw or "")
        policy = RedrivePolicy(str(redrive["deadLetterTargetArn"]), int(redrive["maxReceiveCount"]))
    except (ValueError, KeyError, TypeError):
        return None
    return policy if policy.max_receive_count >= 1 else None
