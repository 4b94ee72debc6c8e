"""Log records to OpenTelemetry (OTLP/HTTP or the console) through a handler beside stdout.

One set-up for the services that export their logs themselves (the webhook relay, the
synthetic monitor): the caller decides the exporter (``otlp``, ``console`` or ``none``, as its
``OTEL_LOGS_EXPORTER`` and endpoint variables say) and the resource; the OTLP exporter reads
``OTEL_EXPORTER_OTLP[_LOGS]_ENDPOINT`` and ``_HEADERS`` itself. Pass ``handler`` to
``lookout_telemetry.logs.configure_logging(extra_handlers=...)`` so records are scrubbed first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
)
from opentelemetry.sdk.resources import Resource

__all__ = ["LogExport", "start_log_export"]


@dataclass
class LogExport:
    """The logger provider and the handler that feeds it (add it beside stdout)."""

    provider: LoggerProvider
    handler: logging.Handler

    def shutdown(self) -> None:
        """Flush and stop the exporter."""
        self.provider.force_flush()
        self.provider.shutdown()


def start_log_export(resource: Resource, choice: str) -> LogExport | None:
    """Return the log export ``choice`` names (``otlp``, ``console``), or None for ``none``."""
    if choice == "none":
        return None
    exporter: LogRecordExporter
    if choice == "console":
        exporter = ConsoleLogRecordExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # noqa: PLC0415
            OTLPLogExporter,
        )

        exporter = OTLPLogExporter()
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    return LogExport(provider, LoggingHandler(logger_provider=provider))
