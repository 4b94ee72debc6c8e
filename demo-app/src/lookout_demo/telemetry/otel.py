"""OpenTelemetry set-up: the tracer and logger providers, their exporters, shutdown.

Standard ``OTEL_*`` variables are honoured: ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` (resource), ``OTEL_TRACES_SAMPLER`` (sampler, read by the SDK),
``OTEL_EXPORTER_OTLP_[TRACES_|LOGS_]ENDPOINT`` / ``..._PROTOCOL`` / ``..._HEADERS``
(exporters, read by the SDK's exporters), ``OTEL_TRACES_EXPORTER`` / ``OTEL_LOGS_EXPORTER``
(``otlp``, ``console`` or ``none``) and ``OTEL_SDK_DISABLED``.

With no OTLP endpoint configured nothing is exported: spans are still created (request ids
and log lines keep their trace ids, metrics keep exemplars) but the app does not log an
error per failed export to a collector that is not there.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

__all__ = ["Telemetry", "build_resource", "exporter_choice", "setup_telemetry"]

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def exporter_choice(signal: str) -> str:
    """Return which exporter a signal ("traces" or "logs") uses: otlp, console or none.

    ``OTEL_<SIGNAL>_EXPORTER`` wins when set; otherwise OTLP is used only when an endpoint
    is configured for that signal, so an unconfigured app stays quiet.
    """
    if _env("OTEL_SDK_DISABLED").lower() in _TRUE:
        return "none"
    chosen = _env(f"OTEL_{signal.upper()}_EXPORTER").lower()
    if chosen:
        first = chosen.split(",")[0].strip()
        if first not in {"otlp", "console", "none"}:
            msg = (
                f"OTEL_{signal.upper()}_EXPORTER={chosen!r}: this app supports otlp, console "
                "or none"
            )
            raise ValueError(msg)
        return first
    if _env(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT") or _env("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return "otlp"
    return "none"


def _protocol(signal: str) -> str:
    protocol = (
        _env(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or _env("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol not in {"http/protobuf", "grpc"}:
        msg = f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use http/protobuf or grpc"
        raise ValueError(msg)
    return protocol


def _span_exporter() -> SpanExporter | None:
    choice = exporter_choice("traces")
    if choice == "console":
        return ConsoleSpanExporter()
    if choice == "none":
        return None
    if _protocol("traces") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()


def _log_exporter() -> LogRecordExporter | None:
    choice = exporter_choice("logs")
    if choice == "console":
        return ConsoleLogRecordExporter()
    if choice == "none":
        return None
    if _protocol("logs") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (  # noqa: PLC0415
            OTLPLogExporter as GrpcLogExporter,
        )

        return GrpcLogExporter()
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # noqa: PLC0415
        OTLPLogExporter,
    )

    return OTLPLogExporter()


def build_resource(service: str, version: str, environment: str) -> Resource:
    """Describe this process; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override."""
    return Resource.create(
        {
            "service.name": service,
            "service.namespace": "lookout-demo",
            "service.version": version,
            "deployment.environment.name": environment,
        }
    )


@dataclass
class Telemetry:
    """The providers this process exports through, and the log handler that feeds OTLP."""

    tracer_provider: TracerProvider
    logger_provider: LoggerProvider | None = None
    log_handlers: list[logging.Handler] = field(default_factory=list)

    def shutdown(self) -> None:
        """Flush and stop every exporter; called once, last, on shutdown."""
        self.tracer_provider.force_flush()
        self.tracer_provider.shutdown()
        if self.logger_provider is not None:
            self.logger_provider.force_flush()
            self.logger_provider.shutdown()


def setup_telemetry(service: str, version: str, environment: str) -> Telemetry:
    """Create the tracer provider, and a logger provider when logs are exported."""
    resource = build_resource(service, version, environment)
    tracer_provider = TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER
    span_exporter = _span_exporter()
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    telemetry = Telemetry(tracer_provider=tracer_provider)
    log_exporter = _log_exporter()
    if log_exporter is not None:
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
        telemetry.logger_provider = logger_provider
        telemetry.log_handlers.append(LoggingHandler(logger_provider=logger_provider))
    log.debug(
        "telemetry configured",
        extra={
            "traces_exporter": exporter_choice("traces"),
            "logs_exporter": exporter_choice("logs"),
        },
    )
    return telemetry
