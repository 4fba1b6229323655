"""Logging and metrics: structlog configured once, and in-process counters/histograms.

Logs are JSON lines when stderr is not a terminal (containers, Lambda) and coloured key=value text on a
terminal. Processors drop anything that looks like a credential before rendering.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import defaultdict
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal

import structlog

_SECRET_KEYS = ("secret", "token", "password", "credential", "access_key")


def redact_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: never let a credential reach a log line."""
    for key in list(event):
        if any(marker in key.lower() for marker in _SECRET_KEYS):
            event[key] = "[redacted]"
    return event


def configure_logging(fmt: Literal["auto", "json", "console"] = "auto", level: str = "info") -> None:
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=True)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # botocore's own warnings (e.g. a failed advisory credential refresh) go through stdlib logging.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")


Labels = tuple[tuple[str, str], ...]


class Metrics:
    """Thread-safe counters, gauges and latency samples, labelled like Prometheus series."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, Labels], float] = defaultdict(float)
        self.gauges: dict[tuple[str, Labels], float] = {}
        self.samples: dict[tuple[str, Labels], list[float]] = defaultdict(list)

    @staticmethod
    def _labels(labels: Mapping[str, str]) -> Labels:
        return tuple(sorted(labels.items()))

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            self.counters[(name, self._labels(labels))] += value

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self.gauges[(name, self._labels(labels))] = value

    def observe(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            bucket = self.samples[(name, self._labels(labels))]
            bucket.append(value)
            if len(bucket) > 10_000:
                del bucket[: len(bucket) - 10_000]

    def count(self, name: str, **labels: str) -> float:
        """Sum of a counter over every series whose labels include ``labels``."""
        wanted = set(labels.items())
        with self._lock:
            return sum(v for (n, ls), v in self.counters.items() if n == name and wanted <= set(ls))
