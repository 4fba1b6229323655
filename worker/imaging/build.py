"""Which libvips this process runs on, and what it can read (for `thumbx render --build`, logs, docs)."""

from __future__ import annotations

import importlib.util

import pyvips

from worker.imaging import heif


def build_info() -> dict[str, object]:
    wheel = importlib.util.find_spec("_libvips") is not None  # shipped by the pyvips-binary wheel
    if pyvips.API_mode and wheel:
        binding = "pyvips-binary wheel"
    else:
        binding = "system libvips" + (" (API mode)" if pyvips.API_mode else " (ABI mode)")
    return {
        "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
        "binding": binding,
        "suffixes": sorted(set(pyvips.get_suffixes())),
        "heic": heif.build_info(),
    }
