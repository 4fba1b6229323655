"""Key planning (pure): which input keys are work, and where their thumbnails go.

``input/<path>`` renders to ``thumbnails/<path>/<preset>.<ext>``, plus ``thumbnails/<path>/manifest.json``
when manifests are on. The mapping is deterministic so a
redelivered message overwrites the same keys with the same bytes (idempotent writes), and the output
prefix is refused as input so thumbnails can never re-trigger the pipeline (the classic infinite loop).

:meth:`KeyLayout.plan` also refuses, before any call, what S3 would refuse or what cannot name an output
safely: ``.``/``..`` or empty path segments, control characters, text that is not UTF-8 (a lone surrogate
from a JSON ``\\ud800`` escape), output keys over S3's 1024 bytes and user metadata over its 2 KB.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from worker.core.errors import BadKey, KeyTooLong, MetadataTooLarge
from worker.core.presets import Preset

MANIFEST_NAME = "manifest.json"  # beside the renditions; no preset's extension is .json
MAX_KEY_BYTES = 1024  # S3: an object key is at most 1024 bytes of UTF-8
MAX_METADATA_BYTES = 2048  # S3: user metadata, the UTF-8 bytes of every name and value, at most 2 KB


@dataclass(frozen=True)
class PlannedOutput:
    preset: Preset
    key: str


@dataclass(frozen=True)
class KeyLayout:
    input_prefix: str = "input/"
    output_prefix: str = "thumbnails/"

    def refusal(self, key: str) -> str | None:
        """Why ``key`` is not work for us, or None when it is."""
        if self.output_prefix and key.startswith(self.output_prefix):
            return "output_prefix"  # loop guard: never process our own outputs
        if not key.startswith(self.input_prefix):
            return "outside_input_prefix"
        rel = key[len(self.input_prefix) :]
        if not rel or rel.endswith("/"):
            return "folder_marker"
        return None

    def relative(self, key: str) -> str:
        return key[len(self.input_prefix) :]

    def outputs(self, key: str, presets: Sequence[Preset]) -> list[PlannedOutput]:
        rel = self.relative(key)
        return [
            PlannedOutput(preset, f"{self.output_prefix}{rel}/{preset.name}.{preset.extension}")
            for preset in presets
        ]

    def manifest_key(self, key: str) -> str:
        """``thumbnails/<path>/manifest.json``, refused like any output when over S3's 1024 bytes."""
        manifest = f"{self.output_prefix}{self.relative(key)}/{MANIFEST_NAME}"
        _check_key_length(manifest)
        return manifest

    def plan(self, key: str, presets: Sequence[Preset]) -> list[PlannedOutput]:
        """:meth:`outputs`, after refusing keys that are unsafe or that S3 would refuse (typed, permanent)."""
        check_source_key(self.relative(key))
        planned = self.outputs(key, presets)
        for output in planned:
            _check_key_length(output.key)
        return planned


def _check_key_length(key: str) -> None:
    size = len(key.encode())
    if size > MAX_KEY_BYTES:
        raise KeyTooLong(f"output key {key[:80]!r}... is {size} bytes, over S3's {MAX_KEY_BYTES}")


def check_source_key(rel: str) -> None:
    """Refuse a relative source path with empty, ``.`` or ``..`` segments, control characters or text
    that cannot be encoded as UTF-8."""
    try:
        rel.encode()
    except UnicodeEncodeError as exc:
        raise BadKey(f"key is not valid UTF-8 text (position {exc.start})") from exc
    bad = next((c for c in rel if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise BadKey(f"key contains the control character U+{ord(bad):04X}")
    for segment in rel.split("/"):
        if segment in ("", ".", ".."):
            raise BadKey(f"key has an {'empty' if not segment else repr(segment)} path segment")


def source_key_digest(key: str) -> str:
    """What outputs store about their source key: a SHA-256 (64 hex characters, whatever the key's
    length or script). The key itself is the output key's middle part; the digest lets a reader check it."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_metadata(metadata: Mapping[str, str]) -> None:
    """Refuse user metadata S3 would refuse: over 2 KB in total (names and values, UTF-8)."""
    size = sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items())
    if size > MAX_METADATA_BYTES:
        raise MetadataTooLarge(f"output metadata is {size} bytes, over S3's {MAX_METADATA_BYTES}")
