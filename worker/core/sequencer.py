"""Ordering of S3 notifications for one key (pure): the ``sequencer`` rule.

S3 delivers event notifications at least once and in no particular order. Every ``ObjectCreated`` record
carries ``s3.object.sequencer``, a hexadecimal string that grows with each PUT or DELETE of *the same key*
(it says nothing across keys). AWS's rule: compare two sequencers of one key after right-padding the
shorter with zeros; the greater is the later event. The pipeline records the sequencer of the event it
rendered on every output (``thumbx-source-sequencer``) and acknowledges an event whose sequencer is lower
than the recorded one as ``stale_event``, so a late, older event never overwrites newer thumbnails.

A sequencer that is absent or not hexadecimal is ``None``: such events are not ordered (they behave as
before this rule existed).
"""

from __future__ import annotations

import string
from typing import Literal

_HEX = frozenset(string.hexdigits)
MAX_LENGTH = 64  # real sequencers are 16-18 characters; a longer "sequencer" is not one
Order = Literal["older", "same", "newer"]


def normalise(sequencer: str | None) -> str | None:
    """The sequencer in upper case, or None when it is absent, empty, too long or not hexadecimal."""
    if not sequencer or len(sequencer) > MAX_LENGTH or not _HEX.issuperset(sequencer):
        return None
    return sequencer.upper()


def compare(event: str, recorded: str) -> Order:
    """Where ``event`` stands against ``recorded`` (both valid sequencers of the same key)."""
    a, b = event.upper(), recorded.upper()
    width = max(len(a), len(b))
    a, b = a.ljust(width, "0"), b.ljust(width, "0")
    if a == b:
        return "same"
    return "older" if a < b else "newer"


def is_stale(event: str | None, recorded: str | None) -> bool:
    """True when both sequencers are known and the event's is older than the recorded one."""
    a, b = normalise(event), normalise(recorded)
    return a is not None and b is not None and compare(a, b) == "older"
