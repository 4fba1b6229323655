"""The manifest of one upload (pure): ``thumbnails/<path>/manifest.json``, schema version 1.

Written after every rendition, so its presence is the completion marker: the pipeline's idempotency HEAD
and the backfill look at it (and at the schema version in its metadata) instead of the last preset. The
bytes depend only on the source and the presets: keys sorted, no timestamps, two-space indent, UTF-8, one
trailing newline — a redelivery rewrites the same bytes.

Schema 1 (every field always present; ``null`` where unknown)::

    {
      "schema_version": 1,
      "source": {"key", "etag", "version_id", "sequencer", "format", "width", "height"},
      "placeholder": {"thumbhash": base64 | null, "dominant_colour": "#rrggbb" | null},
      "presets_fingerprint": "<16 hex>",
      "renditions": {"<preset name>": {"key", "content_type", "width", "height", "bytes"}}
    }

``width``/``height`` of the source are upright (EXIF orientation applied); ``format`` is the decoder's
name for it (``jpeg``, ``png``, ``webp``, ``gif``, ``tiff``, ``avif``, ``heic``). A change that removes or
renames a field, or changes a meaning, increments :data:`SCHEMA_VERSION`; the backfill then treats every
older manifest as not up to date.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.core.keys import MANIFEST_NAME

SCHEMA_VERSION = 1
NAME = MANIFEST_NAME
CONTENT_TYPE = "application/json"
SCHEMA_METADATA = "thumbx-manifest-schema"  # on the manifest object itself: one HEAD tells its schema
MARK = "manifest"  # the manifest's value of the own-output mark (thumbx-preset)


@dataclass(frozen=True)
class RenditionEntry:
    preset: str
    key: str
    content_type: str
    width: int
    height: int
    bytes: int


@dataclass(frozen=True)
class Source:
    key: str
    etag: str
    version_id: str | None
    sequencer: str | None
    format: str
    width: int
    height: int


def document(
    source: Source,
    renditions: Sequence[RenditionEntry],
    *,
    thumbhash: str | None,
    dominant_colour: str | None,
    presets_fingerprint: str,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "source": {
            "key": source.key,
            "etag": source.etag.strip('"'),
            "version_id": source.version_id,
            "sequencer": source.sequencer,
            "format": source.format,
            "width": source.width,
            "height": source.height,
        },
        "placeholder": {"thumbhash": thumbhash, "dominant_colour": dominant_colour},
        "presets_fingerprint": presets_fingerprint,
        "renditions": {
            r.preset: {
                "key": r.key,
                "content_type": r.content_type,
                "width": r.width,
                "height": r.height,
                "bytes": r.bytes,
            }
            for r in renditions
        },
    }


def encode(doc: Mapping[str, Any]) -> bytes:
    """Deterministic bytes: sorted keys, fixed separators, UTF-8, one trailing newline."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def is_current(metadata: Mapping[str, str]) -> bool:
    """Does a manifest object's user metadata say it is of the current schema?"""
    return metadata.get(SCHEMA_METADATA) == str(SCHEMA_VERSION)
