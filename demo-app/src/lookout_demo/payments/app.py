"""Wire the payments service into one FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry

from lookout_demo import __version__
from lookout_demo.payments import routes
from lookout_demo.payments.models import Base
from lookout_demo.settings import PaymentsSettings, get_payments_settings
from lookout_demo.storage.cache import build_cache
from lookout_demo.storage.database import Database
from lookout_demo.storage.schema import create_schema
from lookout_demo.telemetry.metrics import PaymentsServiceMetrics
from lookout_demo.telemetry.otel import Telemetry
from lookout_demo.web.health import HealthChecker
from lookout_demo.web.service import build_app

__all__ = ["create_app"]


def _process_registry() -> CollectorRegistry:
    """Return a registry with the process, platform and GC collectors on it."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


SCHEMA_LOCK_ID = 0x9A75


def create_app(
    settings: PaymentsSettings | None = None,
    *,
    registry: CollectorRegistry | None = None,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """Build the payments app."""
    settings = settings or get_payments_settings()
    metrics = None
    if settings.telemetry_enabled:
        metrics = PaymentsServiceMetrics(
            registry if registry is not None else _process_registry(),
            service=settings.service_name,
            version=__version__,
            revision=settings.revision,
        )
    else:
        telemetry = None
    tracer_provider = telemetry.tracer_provider if telemetry is not None else None
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout_seconds=settings.db_pool_timeout_seconds,
        slow_query_seconds=settings.db_slow_query_seconds,
        metrics=metrics.db if metrics else None,
        tracer_provider=tracer_provider,
    )
    cache = build_cache(settings.redis_url, tracer_provider=tracer_provider)
    health = HealthChecker(
        {"database": db.ping, "cache": cache.ping},
        timeout_seconds=settings.health_check_timeout_seconds,
        ttl_seconds=settings.health_cache_ttl_seconds,
    )

    async def startup() -> None:
        await create_schema(db, Base.metadata, lock_id=SCHEMA_LOCK_ID)

    async def shutdown() -> None:
        await cache.close()
        await db.close()

    app = build_app(
        title="Lookout demo payments",
        settings=settings,
        metrics=metrics,
        telemetry=telemetry,
        health=health,
        routers=[routes.router],
        startup=startup,
        shutdown=shutdown,
    )
    app.state.payments = routes.PaymentsState(settings=settings, db=db, metrics=metrics)
    return app
