"""OpenTelemetry tracing (a span per notification and per delivery) and log export.

Standard ``OTEL_*`` variables apply (service name, resource attributes, sampler, the OTLP
endpoint). With no endpoint configured, spans are still created (log lines and metric
exemplars keep their trace ids) but nothing is exported. Log records go to OTLP beside
stdout when an endpoint is configured (``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_ENDPOINT``; ``OTEL_LOGS_EXPORTER`` ``console`` or ``none`` as the SDK
reads it): in compose through the collector to Loki, where the alerts dashboard shows them.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from lookout_telemetry.otlp_logs import LogExport, start_log_export
from webhook_relay import __version__

__all__ = [
    "PROPAGATOR",
    "LogExport",
    "current_traceparent",
    "setup_logs",
    "setup_tracing",
    "tracer",
]

PROPAGATOR = TraceContextTextMapPropagator()
tracer = trace.get_tracer("webhook_relay", __version__)


def _choice(signal: str) -> str:
    """Return ``otlp``, ``console`` or ``none`` for a signal (traces, logs), as the env says."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() in {"1", "true"}:
        return "none"
    choice = os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "").strip().lower()
    endpoint = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if choice in {"console", "none"}:
        return choice
    return "otlp" if choice or endpoint else "none"


def _exporter() -> SpanExporter | None:
    choice = _choice("traces")
    if choice == "console":
        return ConsoleSpanExporter()
    if choice == "none":
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()


def _resource(service: str, environment: str) -> Resource:
    return Resource.create(
        {
            "service.name": service,
            "service.namespace": "lookout",
            "service.version": __version__,
            "deployment.environment.name": environment,
        }
    )


def setup_tracing(service: str, environment: str) -> TracerProvider:
    """Install a tracer provider for the process and return it (shut it down on exit)."""
    provider = TracerProvider(resource=_resource(service, environment))
    exporter = _exporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def setup_logs(service: str, environment: str) -> LogExport | None:
    """Return the OTLP (or console) log export, or None when logs are not exported."""
    return start_log_export(_resource(service, environment), _choice("logs"))


def current_traceparent() -> str | None:
    """Return the W3C traceparent of the current span, to continue it later."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")
