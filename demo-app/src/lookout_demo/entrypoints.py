"""App factories for uvicorn: configure logs and telemetry for the process, build the app.

uvicorn calls these in each worker process, so each worker sets up its own exporters.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from lookout_demo import __version__
from lookout_demo.settings import (
    CommonSettings,
    get_payments_settings,
    get_shop_settings,
)
from lookout_demo.telemetry.otel import Telemetry, setup_telemetry
from lookout_telemetry.errortracking import start_error_tracking
from lookout_telemetry.logs import configure_logging

__all__ = ["QUIET_LOGGERS", "payments", "shop"]

#: Third-party loggers held above DEBUG whatever DEMO_LOG_LEVEL says: httpx logs every
#: request at INFO (the client spans record them already), and aiosqlite's and asyncpg's
#: DEBUG lines carry bound query parameters (e-mail addresses, password hashes).
QUIET_LOGGERS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "aiosqlite": logging.INFO,
    "asyncpg": logging.INFO,
}


def _process_telemetry(settings: CommonSettings) -> Telemetry | None:
    telemetry = None
    if settings.telemetry_enabled:
        # Logs reach OTLP through opentelemetry-instrumentation-logging's LoggingHandler (in
        # telemetry.log_handlers), which reads the trace context itself; its record-factory
        # half (LoggingInstrumentor) is not used: our JSON formatter reads the current span,
        # and the factory would cost every record, kept or not, a second lookup.
        telemetry = setup_telemetry(settings.service_name, __version__, settings.environment)
    configure_logging(
        settings.service_name,
        level=settings.log_level,
        success_sample_rate=settings.log_success_sample_rate,
        extra_handlers=telemetry.log_handlers if telemetry else (),
    )
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    start_error_tracking(
        settings.sentry_dsn,
        service=settings.service_name,
        package="lookout-demo",
        version=__version__,
        revision=settings.revision,
        environment=settings.environment,
    )
    return telemetry


def shop() -> FastAPI:
    """Build the shop for uvicorn."""
    from lookout_demo.shop.app import create_app  # noqa: PLC0415

    settings = get_shop_settings()
    return create_app(settings, telemetry=_process_telemetry(settings))


def payments() -> FastAPI:
    """Build the payments service for uvicorn."""
    from lookout_demo.payments.app import create_app  # noqa: PLC0415

    settings = get_payments_settings()
    return create_app(settings, telemetry=_process_telemetry(settings))
