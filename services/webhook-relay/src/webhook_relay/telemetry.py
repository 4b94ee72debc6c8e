"""OpenTelemetry tracing: a span per notification and per delivery.

Standard ``OTEL_*`` variables apply (service name, resource attributes, sampler, the OTLP
endpoint). With no endpoint configured, spans are still created (log lines and metric
exemplars keep their trace ids) but nothing is exported.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from webhook_relay import __version__

__all__ = ["PROPAGATOR", "current_traceparent", "setup_tracing", "tracer"]

PROPAGATOR = TraceContextTextMapPropagator()
tracer = trace.get_tracer("webhook_relay", __version__)


def _exporter() -> SpanExporter | None:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() in {"1", "true"}:
        return None
    choice = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if choice == "console":
        return ConsoleSpanExporter()
    if choice == "none" or (not choice and not endpoint):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()


def setup_tracing(service: str, environment: str) -> TracerProvider:
    """Install a tracer provider for the process and return it (shut it down on exit)."""
    resource = Resource.create(
        {
            "service.name": service,
            "service.namespace": "lookout",
            "service.version": __version__,
            "deployment.environment.name": environment,
        }
    )
    provider = TracerProvider(resource=resource)
    exporter = _exporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def current_traceparent() -> str | None:
    """Return the W3C traceparent of the current span, to continue it later."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")
