"""OpenTelemetry set-up: traces and logs, exported as the ``OTEL_*`` variables say.

Honoured: ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``,
``OTEL_EXPORTER_OTLP[_TRACES|_LOGS]_ENDPOINT`` / ``_HEADERS`` (OTLP over HTTP/protobuf),
``OTEL_TRACES_EXPORTER`` / ``OTEL_LOGS_EXPORTER`` (``otlp``, ``console`` or ``none``) and
``OTEL_SDK_DISABLED``. With no endpoint configured, spans are still made (trace ids in
results, logs, exemplars and the status page's links) but nothing is exported. Logs go to
OTLP (Loki) through a handler beside the stdout one, after the same redaction.
"""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from lookout_telemetry.otlp_logs import LogExport, start_log_export
from synthetic_monitor import __version__

__all__ = ["LogExport", "exporter_choice", "setup_logs", "setup_tracing", "traces_exporter"]


def exporter_choice(signal: str) -> str:
    """Return otlp, console or none for ``traces`` or ``logs`` (OTLP when an endpoint is set)."""
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in {"1", "true", "yes"}:
        return "none"
    name = f"OTEL_{signal.upper()}_EXPORTER"
    chosen = env.get(name, "").strip().lower().split(",")[0].strip()
    if chosen:
        if chosen not in {"otlp", "console", "none"}:
            msg = f"{name}={chosen!r}: the monitor supports otlp, console or none"
            raise ValueError(msg)
        return chosen
    if env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        return "otlp"
    return "none"


def traces_exporter() -> str:
    """Return otlp, console or none for traces."""
    return exporter_choice("traces")


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
    """Return a tracer provider exporting as the environment says."""
    provider = TracerProvider(resource=_resource(service, environment))
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


def setup_logs(service: str, environment: str) -> LogExport | None:
    """Return the OTLP (or console) log export, or None when logs are not exported."""
    return start_log_export(_resource(service, environment), exporter_choice("logs"))
