"""CloudWatch Embedded Metric Format: the worker's counters as structured log lines (ECS and Lambda).

CloudWatch Logs turns a JSON log line with an ``_aws`` member into metrics, no agent or API call needed.
Counters are sent as deltas since the previous line (CloudWatch sums them); latencies as the raw values
observed since then (CloudWatch computes the statistics). :func:`emf_document` is pure.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import structlog

from worker.observability.telemetry import Metrics

log = structlog.get_logger(__name__)

NAMESPACE = "thumbx"
# Prometheus series -> (EMF metric name, unit). EMF names avoid words the log redactor hides.
COUNTERS: dict[str, str] = {
    "thumbx_messages_received_total": "MessagesReceived",
    "thumbx_messages_deleted_total": "MessagesDeleted",
    "thumbx_messages_retried_total": "MessagesRetried",
    "thumbx_messages_dead_lettered_total": "MessagesDeadLettered",
    "thumbx_messages_released_total": "MessagesReleased",
    "thumbx_records_succeeded_total": "RecordsSucceeded",
    "thumbx_records_failed_total": "RecordsFailed",
    "thumbx_records_ignored_total": "RecordsIgnored",
    "thumbx_loop_guard_total": "LoopGuardRefusals",
    "thumbx_receive_errors_total": "ReceiveErrors",
    "thumbx_visibility_extended_total": "VisibilityExtensions",
    "thumbx_credential_refresh_failures_total": "RoleRefreshFailures",
}
LATENCIES: dict[str, str] = {
    "thumbx_render_seconds": "RenderTime",
    "thumbx_end_to_end_seconds": "EndToEndTime",
}
MAX_VALUES = 100  # EMF accepts up to 100 values per metric per line


def emf_document(
    counts: Mapping[str, float],
    latencies: Mapping[str, Sequence[float]],
    *,
    dimensions: Mapping[str, str],
    timestamp_ms: int,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """One EMF log object: counts (unit Count) and latency values in milliseconds."""
    doc: dict[str, Any] = dict(dimensions)
    definitions: list[dict[str, str]] = []
    for name, value in counts.items():
        doc[name] = value
        definitions.append({"Name": name, "Unit": "Count"})
    for name, values in latencies.items():
        if values:
            doc[name] = [round(v * 1000, 3) for v in values[-MAX_VALUES:]]
            definitions.append({"Name": name, "Unit": "Milliseconds"})
    doc["_aws"] = {
        "Timestamp": timestamp_ms,
        "CloudWatchMetrics": [
            {"Namespace": namespace, "Dimensions": [sorted(dimensions)], "Metrics": definitions}
        ],
    }
    return doc


class EmfReporter:
    """Computes deltas from a :class:`Metrics` store and logs them as one EMF line per interval."""

    def __init__(self, metrics: Metrics, *, dimensions: Mapping[str, str] | None = None) -> None:
        self._metrics = metrics
        self._dimensions = dict(dimensions or {"Service": "thumbx-worker"})
        self._last_counts: dict[str, float] = {}
        self._last_lengths: dict[str, int] = {}

    def document(self) -> dict[str, Any] | None:
        """The next EMF object, or None when nothing happened since the last one."""
        counters, _gauges, _hist = self._metrics.snapshot()
        totals: dict[str, float] = {}
        for (series, _labels), value in counters.items():
            if series in COUNTERS:
                totals[COUNTERS[series]] = totals.get(COUNTERS[series], 0.0) + value
        deltas = {k: v - self._last_counts.get(k, 0.0) for k, v in totals.items()}
        self._last_counts = totals
        latencies: dict[str, list[float]] = {}
        for series, name in LATENCIES.items():
            count, samples = self._metrics.observations(series)
            new = count - self._last_lengths.get(name, 0)
            self._last_lengths[name] = count
            latencies[name] = samples[-new:] if new > 0 else []
        if not any(deltas.values()) and not any(latencies.values()):
            return None
        return emf_document(
            {k: v for k, v in deltas.items() if v},
            latencies,
            dimensions=self._dimensions,
            timestamp_ms=int(time.time() * 1000),
        )

    def emit(self) -> None:
        doc = self.document()
        if doc is not None:
            log.info("metrics", **doc)

    def write(self, stream: TextIO | None = None) -> None:
        """The next document as one bare JSON line (Lambda: on stdout, which CloudWatch Logs reads as EMF)."""
        doc = self.document()
        if doc is not None:
            out = stream or sys.stdout
            out.write(json.dumps(doc, separators=(",", ":")) + "\n")
            out.flush()

    async def run(self, interval: float) -> None:
        """Emit every ``interval`` seconds until cancelled (then once more, so a stop loses no counts)."""
        try:
            while True:
                await asyncio.sleep(interval)
                self.emit()
        finally:
            self.emit()
