"""Prometheus text, EMF lines, health probes and the healthcheck command's target (pure parts)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from worker.aws.credentials import CredentialStats
from worker.cli.healthcheck import target_url
from worker.observability.emf import EmfReporter, emf_document
from worker.observability.health import HealthProbe, render_metrics
from worker.observability.telemetry import Metrics
from worker.runtime.leases import ConsumerStatus

pytestmark = pytest.mark.reliability


def test_prometheus_text_has_counters_by_reason_histograms_and_credential_expiry() -> None:
    metrics = Metrics()
    metrics.inc("thumbx_messages_received_total", 3)
    metrics.inc("thumbx_records_failed_total", reason="corrupt_image", kind="permanent")
    metrics.inc("thumbx_records_failed_total", reason="throttled", kind="transient")
    metrics.set("thumbx_in_flight", 2)
    for seconds in (0.02, 0.3, 7.0):
        metrics.observe("thumbx_render_seconds", seconds)
    expiry = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    metrics.set("thumbx_credential_expiry_timestamp_seconds", expiry.timestamp())
    text = render_metrics(metrics).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["thumbx_messages_received"].samples[0].value == 3
    failed = {s.labels["reason"]: s.labels["kind"] for s in families["thumbx_records_failed"].samples}
    assert failed == {"corrupt_image": "permanent", "throttled": "transient"}
    assert families["thumbx_in_flight"].samples[0].value == 2
    buckets = {
        s.labels["le"]: s.value
        for s in families["thumbx_render_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets["0.025"] == 1
    assert buckets["0.5"] == 2
    assert buckets["+Inf"] == 3
    expiry_family = families["thumbx_credential_expiry_timestamp_seconds"]
    assert expiry_family.samples[0].value == expiry.timestamp()


def test_emf_document_is_cloudwatch_shaped() -> None:
    doc = emf_document(
        {"MessagesReceived": 4.0}, {"RenderTime": [0.25]}, dimensions={"Service": "w"}, timestamp_ms=1
    )
    assert doc["MessagesReceived"] == 4.0
    assert doc["RenderTime"] == [250.0]
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [["Service"]]
    assert {"Name": "RenderTime", "Unit": "Milliseconds"} in directive["Metrics"]
    assert doc["_aws"]["Timestamp"] == 1


def test_emf_reporter_sends_deltas_and_nothing_when_idle() -> None:
    metrics = Metrics()
    reporter = EmfReporter(metrics)
    metrics.inc("thumbx_messages_received_total", 5)
    metrics.observe("thumbx_render_seconds", 0.1)
    first = reporter.document()
    assert first is not None
    assert first["MessagesReceived"] == 5
    assert first["RenderTime"] == [100.0]
    assert reporter.document() is None
    metrics.inc("thumbx_messages_received_total", 2)
    second = reporter.document()
    assert second is not None
    assert second["MessagesReceived"] == 2
    assert "RenderTime" not in second


def test_readiness_needs_a_recent_receive_and_valid_credentials() -> None:
    status = ConsumerStatus()
    stats = CredentialStats(expiry=datetime.now(UTC) + timedelta(hours=1))
    probe = HealthProbe(status, stats, liveness_seconds=60)
    assert probe.ready()[0] is False  # nothing received yet
    status.last_receive_ok = time.monotonic()
    assert probe.ready() == (True, {"problems": [], "credentials_expire": stats.expiry.isoformat()})  # type: ignore[union-attr]
    status.paused_until = time.monotonic() + 5
    assert "paused" in probe.ready()[1]["problems"]
    status.paused_until = 0
    stats.expiry = datetime.now(UTC) - timedelta(seconds=1)
    assert "credentials expired" in probe.ready()[1]["problems"]
    assert probe.live()[0] is True
    status.last_tick -= 61
    assert probe.live()[0] is False


def test_healthcheck_targets_loopback_even_when_the_worker_binds_everything() -> None:
    env = {"THUMBX_HEALTH_HOST": "0.0.0.0", "THUMBX_HEALTH_PORT": "9100"}
    assert target_url(env, ready=True) == "http://127.0.0.1:9100/readyz"
    assert target_url({}, ready=False) == "http://127.0.0.1:8080/healthz"
