"""Wire the payments service into one FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from lookout_demo.payments import routes
from lookout_demo.settings import PaymentsSettings, get_payments_settings
from lookout_demo.storage.audit import AuditLog
from lookout_demo.storage.migrations import describe, migrate
from lookout_demo.telemetry.metrics import PaymentsServiceMetrics
from lookout_demo.telemetry.otel import Telemetry
from lookout_demo.web.foundation import build_foundation
from lookout_demo.web.health import HealthChecker
from lookout_demo.web.service import build_app

__all__ = ["create_app"]


def create_app(
    settings: PaymentsSettings | None = None,
    *,
    registry: CollectorRegistry | None = None,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """Build the payments app."""
    settings = settings or get_payments_settings()
    base = build_foundation(
        settings, PaymentsServiceMetrics, registry=registry, telemetry=telemetry
    )
    health = HealthChecker(
        {"database": base.db.ping, "cache": base.cache.ping},
        timeout_seconds=settings.health_check_timeout_seconds,
        ttl_seconds=settings.health_cache_ttl_seconds,
    )

    audit = AuditLog(base.db)

    async def startup() -> None:
        result = await migrate(
            base.db, "payments", metrics=base.metrics.migrations if base.metrics else None
        )
        if result.outcome == "applied":
            await audit.append(
                "migration", "schema_migrated", actor="payments", details=describe(result)
            )

    async def shutdown() -> None:
        """Nothing of its own to close: the foundation's stores close after this."""

    app = build_app(
        title="Lookout demo payments",
        settings=settings,
        foundation=base,
        health=health,
        routers=[routes.router],
        startup=startup,
        shutdown=shutdown,
    )
    app.state.audit = audit
    app.state.payments = routes.PaymentsState(settings=settings, metrics=base.metrics)
    return app
