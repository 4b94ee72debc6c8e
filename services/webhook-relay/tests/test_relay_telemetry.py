"""Traces, logs and metrics: spans per notification and delivery, scrubbed JSON logs, exemplars."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from lookout_telemetry.logs import JsonFormatter
from lookout_telemetry.scrub import scrub
from relay_support import AUTH, payload, receiver, settings, write_routing
from stack_support.receiver import WebhookReceiver
from webhook_relay import app as app_module
from webhook_relay import delivery as delivery_module
from webhook_relay import telemetry
from webhook_relay.app import create_app
from webhook_relay.routing import load_routing

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def test_spans_continue_traceparent_from_accept_to_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """relay.accept continues Alertmanager's traceparent; relay.deliver continues the same trace."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    monkeypatch.setattr(app_module, "tracer", tracer)
    monkeypatch.setattr(delivery_module, "tracer", tracer)
    with receiver() as target:
        path = write_routing(
            tmp_path,
            f"targets:\n  hook: {{type: webhook, url: '{target.url}/in'}}\nfallback: [hook]\n",
        )
        app = create_app(settings(tmp_path, path), load_routing(path), CollectorRegistry())
        with TestClient(app) as client:
            client.post("/webhook", json=payload(), headers={**AUTH, "traceparent": TRACEPARENT})
            (request,) = target.wait_for(1)
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert format(spans["relay.accept"].context.trace_id, "032x") == TRACE_ID
    assert format(spans["relay.deliver"].context.trace_id, "032x") == TRACE_ID
    assert spans["relay.deliver"].parent.span_id == spans["relay.accept"].context.span_id  # type: ignore[union-attr]
    assert spans["relay.deliver"].attributes["relay.target"] == "hook"  # type: ignore[index]
    assert TRACE_ID in request.headers["traceparent"]


def test_json_log_lines_scrub_secrets() -> None:
    """Secrets in extras and in text (bearer tokens, webhook URLs, URL passwords) are masked."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("webhook-relay"))
    logger = logging.getLogger("relay-test-scrub")
    logger.addHandler(handler)
    logger.propagate = False
    logger.warning(
        "failed posting to https://hooks.slack.com/services/T0/B0/XYZ with Bearer abc.def",
        extra={
            "routing_key": "R0UT1NG",
            "target": "pager",
            "error": "smtp://user:pw@mail:587 refused",
        },
    )
    line = json.loads(stream.getvalue())
    text = stream.getvalue()
    assert (
        "XYZ" not in text and "abc.def" not in text and "R0UT1NG" not in text and ":pw@" not in text
    )
    assert line["routing_key"] == "[REDACTED]"
    assert line["target"] == "pager"
    assert line["service"] == "webhook-relay"
    assert scrub({"nested": {"token": "t", "ok": 1}}) == {
        "nested": {"token": "[REDACTED]", "ok": 1}
    }


def test_metrics_have_exemplars_in_openmetrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a sampled span, the accept histogram carries a trace_id exemplar (OpenMetrics)."""
    provider = TracerProvider()
    monkeypatch.setattr(app_module, "tracer", provider.get_tracer("test"))
    path = write_routing(
        tmp_path, "targets:\n  h: {type: webhook, url: 'http://127.0.0.1:9/'}\nfallback: [h]\n"
    )
    app = create_app(settings(tmp_path, path, workers=0), load_routing(path), CollectorRegistry())
    with TestClient(app) as client:
        client.post("/webhook", json=payload(), headers={**AUTH, "traceparent": TRACEPARENT})
        text = client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        ).text
    assert f'# {{trace_id="{TRACE_ID}"}}' in text


def test_log_export_is_off_without_an_otlp_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no OTLP endpoint and no OTEL_LOGS_EXPORTER, log records stay on stdout only."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                 "OTEL_LOGS_EXPORTER", "OTEL_SDK_DISABLED"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert telemetry.setup_logs("webhook-relay", "test") is None


def test_log_records_are_exported_over_otlp(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a logs endpoint, a log record reaches it as OTLP/HTTP (as compose sends to Loki)."""
    with WebhookReceiver() as otlp:
        monkeypatch.setenv(
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", f"http://{otlp.hostport}/otlp/v1/logs"
        )
        monkeypatch.delenv("OTEL_LOGS_EXPORTER", raising=False)
        export = telemetry.setup_logs("webhook-relay", "test")
        assert export is not None
        logger = logging.getLogger("webhook_relay.test_export")
        logger.addHandler(export.handler)
        try:
            logger.warning("delivered to the test target")
        finally:
            logger.removeHandler(export.handler)
            export.shutdown()
        [request] = otlp.snapshot()
    assert request.path == "/otlp/v1/logs"
    assert b"delivered to the test target" in request.body
    assert b"webhook-relay" in request.body  # the resource's service.name
