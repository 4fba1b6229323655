"""Logging and metrics: structlog configured once, and in-process counters/histograms.

Logs are JSON lines when stderr is not a terminal (containers, Lambda) and coloured key=value text on a
terminal, stdlib loggers (botocore, aiohttp, pyvips/libvips) and asyncio's unhandled exceptions included.
Processors drop anything that looks like a credential before rendering.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections import defaultdict
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
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
    """structlog for thumbx's own events, and every stdlib logger routed through the same renderer:
    botocore (e.g. a failed advisory credential refresh), aiohttp, asyncio, ``py.warnings`` and pyvips,
    which forwards libvips' GLib log domain ``VIPS`` ("VipsJpeg: premature end of JPEG file") to its
    ``pyvips`` logger. On a non-terminal stderr, then, every line is one JSON object."""
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=True)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)


def log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's exception handler (e.g. "Task exception was never retrieved"), as one structlog line."""
    exc = context.get("exception")
    task = context.get("task") or context.get("future")
    structlog.get_logger("asyncio").error(
        "asyncio_unhandled_exception",
        message=context.get("message", ""),
        task=getattr(task, "get_name", lambda: repr(task))() if task is not None else None,
        exc_info=exc if isinstance(exc, BaseException) else None,
    )


Labels = tuple[tuple[str, str], ...]

# Latency buckets in seconds (Prometheus convention): 5 ms .. 5 min.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass
class Histogram:
    """Cumulative bucket counts, as Prometheus wants them (samples are trimmed, these never are)."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def add(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.total += value
        self.count += 1


class Metrics:
    """Thread-safe counters, gauges and latency samples, labelled like Prometheus series."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, Labels], float] = defaultdict(float)
        self.gauges: dict[tuple[str, Labels], float] = {}
        self.samples: dict[tuple[str, Labels], list[float]] = defaultdict(list)
        self.histograms: dict[tuple[str, Labels], Histogram] = defaultdict(Histogram)

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
            self.histograms[(name, self._labels(labels))].add(value)
            if len(bucket) > 10_000:
                del bucket[: len(bucket) - 10_000]

    def count(self, name: str, **labels: str) -> float:
        """Sum of a counter over every series whose labels include ``labels``."""
        wanted = set(labels.items())
        with self._lock:
            return sum(v for (n, ls), v in self.counters.items() if n == name and wanted <= set(ls))

    def gauge(self, name: str, **labels: str) -> float | None:
        with self._lock:
            return self.gauges.get((name, self._labels(labels)))

    def snapshot(
        self,
    ) -> tuple[
        dict[tuple[str, Labels], float], dict[tuple[str, Labels], float], dict[tuple[str, Labels], Histogram]
    ]:
        """Consistent copies of the counters, gauges and histograms (for exporters)."""
        with self._lock:
            histograms = {
                key: Histogram(h.bounds, list(h.counts), h.total, h.count)
                for key, h in self.histograms.items()
            }
            return dict(self.counters), dict(self.gauges), histograms

    def observations(self, name: str, **labels: str) -> tuple[int, list[float]]:
        """How many values were ever observed in a series, and (a copy of) the most recent ones."""
        key = (name, self._labels(labels))
        with self._lock:
            hist = self.histograms.get(key)
            return (hist.count if hist else 0), list(self.samples.get(key, []))
