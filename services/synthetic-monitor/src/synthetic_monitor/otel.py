"""OpenTelemetry set-up: the tracer provider and its exporter (the ``OTEL_*`` variables).

Honoured: ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``,
``OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT`` / ``_HEADERS`` (OTLP over HTTP/protobuf),
``OTEL_TRACES_EXPORTER`` (``otlp``, ``console`` or ``none``) and ``OTEL_SDK_DISABLED``.
With no endpoint configured, spans are still made (trace ids in results, logs, exemplars
and the status page's links) but nothing is exported.
"""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from synthetic_monitor import __version__

__all__ = ["setup_tracing", "traces_exporter"]


def traces_exporter() -> str:
    """Return otlp, console or none (OTLP only when an endpoint is configured)."""
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in {"1", "true", "yes"}:
        return "none"
    chosen = env.get("OTEL_TRACES_EXPORTER", "").strip().lower().split(",")[0].strip()
    if chosen:
        if chosen not in {"otlp", "console", "none"}:
            msg = f"OTEL_TRACES_EXPORTER={chosen!r}: the monitor supports otlp, console or none"
            raise ValueError(msg)
        return chosen
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return "otlp"
    return "none"


def setup_tracing(service: str, environment: str) -> TracerProvider:
    """Return a tracer provider exporting as the environment says."""
    resource = Resource.create(
        {
            "service.name": service,
            "service.namespace": "lookout",
            "service.version": __version__,
            "deployment.environment.name": environment,
        }
    )
    provider = TracerProvider(resource=resource)
    choice = traces_exporter()
    exporter: SpanExporter | None = None
    if choice == "console":
        exporter = ConsoleSpanExporter()
    elif choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        exporter = OTLPSpanExporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
