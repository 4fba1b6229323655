"""The worker's HTTP face: ``/healthz`` (live), ``/readyz`` (ready), ``/metrics`` (Prometheus text).

* live: the consumer loop ticked recently (it ticks at every poll, every second while full, every heartbeat,
  and every second while start-up waits for credentials);
* ready: start-up is done (role assumed, the queue answered), not draining, not paused, the last receive
  succeeded (so the queue is reachable with the current credentials) and the assumed-role credentials have
  not expired;
* metrics: every series in :class:`worker.observability.telemetry.Metrics`, rendered by ``prometheus_client``.

Served by aiohttp (already installed with aiobotocore) on ``THUMBX_HEALTH_HOST:THUMBX_HEALTH_PORT``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from worker.aws.credentials import CredentialStats
from worker.aws.startup import StartupState
from worker.observability.telemetry import Labels, Metrics
from worker.runtime.leases import ConsumerStatus

log = structlog.get_logger(__name__)
V = TypeVar("V")

EXPIRY_GAUGE = "thumbx_credential_expiry_timestamp_seconds"  # set by worker.aws.credentials on refresh
_HELP = {
    "thumbx_messages_received_total": "SQS messages received",
    "thumbx_messages_deleted_total": "SQS messages deleted after success or dead-lettering",
    "thumbx_messages_retried_total": "messages left for redelivery after a transient failure",
    "thumbx_messages_dead_lettered_total": "failed records sent to the DLQ, by reason",
    "thumbx_messages_released_total": "unfinished messages returned to the queue at shutdown",
    "thumbx_visibility_extended_total": "visibility extensions sent by the heartbeat",
    "thumbx_records_total": "records processed, by status and reason",
    "thumbx_records_succeeded_total": "records whose thumbnails exist (rendered or already rendered)",
    "thumbx_records_ignored_total": "records acknowledged on purpose without work, by reason",
    "thumbx_records_failed_total": "records that failed, by reason and kind (permanent/transient)",
    "thumbx_loop_guard_total": "records refused because they are the worker's own outputs",
    "thumbx_receive_errors_total": "receive attempts that failed or were held back, by reason",
    "thumbx_in_flight": "messages held by this worker",
    "thumbx_render_seconds": "time to render every preset of one image",
    "thumbx_end_to_end_seconds": "upload (event time) to thumbnails written",
    "thumbx_message_seconds": "time from receive to ack of one message",
    EXPIRY_GAUGE: "expiry of the current assumed-role credentials (unix time)",
    "thumbx_credential_refreshes_total": "successful sts:AssumeRole calls",
    "thumbx_credential_refresh_failures_total": "failed sts:AssumeRole calls",
    "thumbx_messages_redelivered_while_held_total": "messages redelivered while still being processed here",
}


@dataclass
class HealthProbe:
    """Answers the two health questions from the consumer's status and the role's credential stats."""

    status: ConsumerStatus
    credentials: CredentialStats | None
    liveness_seconds: float
    startup: StartupState | None = None

    def live(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self.status.last_tick
        return age <= self.liveness_seconds, {"loop_tick_age_s": round(age, 2)}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        problems: list[str] = []
        if self.startup is not None and self.startup.waiting_for is not None:
            problems.append(f"starting (attempt {self.startup.attempts}): {self.startup.waiting_for}")
        if self.status.draining:
            problems.append("draining")
        if self.status.paused_until > now:
            problems.append("paused")
        if self.status.last_receive_ok is None:
            problems.append("no successful receive yet")
        if self.status.last_receive_error:
            problems.append(f"receive failing: {self.status.last_receive_error}")
        expiry = self.credentials.expiry if self.credentials else None
        if expiry is not None and expiry <= datetime.now(UTC):
            problems.append("credentials expired")
        detail: dict[str, Any] = {"problems": problems}
        if expiry is not None:
            detail["credentials_expire"] = expiry.isoformat()
        return not problems, detail


class MetricsCollector(Collector):
    """Exposes a :class:`Metrics` store to prometheus_client (counters, gauges, cumulative histograms)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        counters, gauges, histograms = self._metrics.snapshot()
        for kind, values in ((CounterMetricFamily, counters), (GaugeMetricFamily, gauges)):
            for name, series in _by_name(values):
                names = _label_names(series)
                metric = kind(name, _HELP.get(name, name), labels=names)
                for labels, value in series:
                    metric.add_metric(_label_values(labels, names), value)
                yield metric
        for name, hseries in _by_name(histograms):
            names = _label_names(hseries)
            family = HistogramMetricFamily(name, _HELP.get(name, name), labels=names)
            for labels, hist in hseries:
                cumulative, buckets = 0, []
                for bound, count in zip((*hist.bounds, float("inf")), hist.counts, strict=True):
                    cumulative += count
                    buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
                family.add_metric(_label_values(labels, names), buckets, hist.total)
            yield family


def _by_name(store: dict[tuple[str, Labels], V]) -> Iterator[tuple[str, list[tuple[Labels, V]]]]:
    grouped: dict[str, list[tuple[Labels, V]]] = {}
    for (name, labels), value in sorted(store.items(), key=lambda kv: kv[0]):
        grouped.setdefault(name, []).append((labels, value))
    yield from grouped.items()


def _label_names(series: list[tuple[Labels, Any]]) -> list[str]:
    return sorted({key for labels, _ in series for key, _ in labels})


def _label_values(labels: Labels, names: list[str]) -> list[str]:
    given = dict(labels)
    return [given.get(name, "") for name in names]


def render_metrics(metrics: Metrics) -> bytes:
    """The Prometheus text exposition of ``metrics``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(metrics))
    return generate_latest(registry)


class HealthServer:
    """aiohttp app serving the three endpoints; ``start()`` returns the bound port (0 picks a free one)."""

    def __init__(self, probe: HealthProbe, metrics: Metrics, *, host: str, port: int) -> None:
        self._probe = probe
        self._metrics = metrics
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        self._app = app

    async def start(self) -> int:
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = int(runner.addresses[0][1])
        log.info("health_server_started", host=self._host, port=port)
        return port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        ok, detail = self._probe.live()
        return web.json_response({"status": "ok" if ok else "stalled", **detail}, status=200 if ok else 503)

    async def _readyz(self, _request: web.Request) -> web.Response:
        ok, detail = self._probe.ready()
        body = {"status": "ready" if ok else "not ready", **detail}
        return web.json_response(body, status=200 if ok else 503)

    async def _metrics_page(self, _request: web.Request) -> web.Response:
        body = render_metrics(self._metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
