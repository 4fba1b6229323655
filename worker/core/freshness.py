"""The one "up to date" rule (pure): is an output (or manifest) current for this source and these presets?

The pipeline's idempotency HEAD (of the output written last) and the backfill (of every planned output)
both ask it. An output is up to date when its user metadata records

* the source's ETag (``thumbx-source-etag``), and
* the fingerprint of the presets it was rendered with (``thumbx-presets``): a preset whose size or options
  changed under the same name makes every output due again, and, when known,
* the source version (``thumbx-source-version``), and no sequencer older than the event's
  (``thumbx-source-sequencer``: a newer event renders again even for the same bytes), and
* for a manifest, the current schema (``thumbx-manifest-schema``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from worker.core.manifest import is_current as is_current_manifest
from worker.core.presets import Preset
from worker.core.sequencer import compare

SOURCE_ETAG = "thumbx-source-etag"
PRESETS = "thumbx-presets"
SOURCE_VERSION = "thumbx-source-version"
SOURCE_SEQUENCER = "thumbx-source-sequencer"  # the sequencer of the event the outputs were rendered for

Verdict = Literal["missing", "stale", "done"]


def presets_fingerprint(presets: Sequence[Preset]) -> str:
    """Short stable digest of the preset list: outputs rendered with other presets are not 'done'."""
    text = repr(tuple(presets))  # every field of the frozen dataclasses, deterministic across processes
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Wanted:
    """What an output must have been rendered from to be up to date."""

    etag: str
    fingerprint: str
    version_id: str | None = None
    sequencer: str | None = None


def verdict(metadata: Mapping[str, str] | None, wanted: Wanted, *, manifest: bool = False) -> Verdict:
    """``missing`` without an object (None), ``stale`` unless its metadata says current, else ``done``."""
    if metadata is None:
        return "missing"
    recorded_sequencer = metadata.get(SOURCE_SEQUENCER)
    current = (
        bool(wanted.etag)
        and metadata.get(SOURCE_ETAG) == wanted.etag.strip('"')
        and metadata.get(PRESETS) == wanted.fingerprint
        and (wanted.version_id is None or metadata.get(SOURCE_VERSION) == wanted.version_id)
        and (not manifest or is_current_manifest(metadata))
        and not (
            wanted.sequencer
            and recorded_sequencer
            and compare(wanted.sequencer, recorded_sequencer) == "newer"
        )
    )
    return "done" if current else "stale"


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """Several outputs: ``missing`` if any is, else ``stale`` if any is, else ``done``."""
    seen = set(verdicts)
    return "missing" if "missing" in seen else "stale" if "stale" in seen else "done"
