"""Test-only entry point: the real ``thumbx worker`` with a renderer that sleeps per image width.

``THUMBX_TEST_RENDER_DELAYS`` is JSON ``{"<width>": seconds}``. Each render logs ``test_render_started``
(with the width) before sleeping, so a test knows a render is under way. Never used by the product.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

import structlog

from tests.reliability import CountingRenderer, _width
from worker.core.config import load_settings
from worker.core.presets import Preset
from worker.imaging import DEFAULT_LIMITS, Limits, Rendition
from worker.observability.telemetry import configure_logging

log = structlog.get_logger("tests.slow_worker")


class AnnouncingRenderer(CountingRenderer):
    def __call__(
        self, data: bytes, presets: Sequence[Preset], limits: Limits = DEFAULT_LIMITS
    ) -> list[Rendition]:
        log.info("test_render_started", width=_width(data))
        return super().__call__(data, presets, limits)


def main() -> int:
    from worker.cli.worker import serve

    delays = {
        int(k): float(v) for k, v in json.loads(os.environ.get("THUMBX_TEST_RENDER_DELAYS", "{}")).items()
    }
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    return serve(settings, renderer=AnnouncingRenderer(delays))


if __name__ == "__main__":
    sys.exit(main())
