"""Key planning (pure): which input keys are work, and where their thumbnails go.

``input/<path>`` renders to ``thumbnails/<path>/<preset>.<ext>``. The mapping is deterministic so a
redelivered message overwrites the same keys with the same bytes (idempotent writes), and the output
prefix is refused as input so thumbnails can never re-trigger the pipeline (the classic infinite loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from worker.presets import Preset


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
