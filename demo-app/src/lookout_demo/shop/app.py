"""Wire the shop: settings, storage, telemetry and routes into one FastAPI app."""

from __future__ import annotations

from functools import partial

import httpx
from fastapi import FastAPI
from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry

from lookout_demo import __version__
from lookout_demo.settings import ShopSettings, get_shop_settings
from lookout_demo.shop import seed
from lookout_demo.shop.deps import ShopState
from lookout_demo.shop.models import Base
from lookout_demo.shop.payments_client import PaymentsClient
from lookout_demo.shop.routes import auth, carts, catalog, checkout
from lookout_demo.shop.security import LoginGuard
from lookout_demo.storage.cache import build_cache
from lookout_demo.storage.database import Database
from lookout_demo.storage.schema import create_schema
from lookout_demo.telemetry.metrics import ShopMetrics
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


#: Postgres advisory-lock key for the shop's schema creation (any constant unique per schema).
SCHEMA_LOCK_ID = 0x5407


def create_app(
    settings: ShopSettings | None = None,
    *,
    registry: CollectorRegistry | None = None,
    telemetry: Telemetry | None = None,
    payments_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the shop app; everything injectable so tests can build fresh ones."""
    settings = settings or get_shop_settings()
    metrics = None
    if settings.telemetry_enabled:
        metrics = ShopMetrics(
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
    payments = PaymentsClient(
        settings.payments_url,
        timeout_seconds=settings.payments_timeout_seconds,
        tracer_provider=tracer_provider,
        transport=payments_transport,
    )
    state = ShopState(
        settings=settings,
        db=db,
        cache=cache,
        metrics=metrics,
        payments=payments,
        guard=LoginGuard(
            cache,
            metrics.security if metrics else None,
            max_failures=settings.bruteforce_max_failures,
            window_seconds=settings.bruteforce_window_seconds,
        ),
    )
    health = HealthChecker(
        {"database": db.ping, "cache": cache.ping, "payments": payments.ping},
        timeout_seconds=settings.health_check_timeout_seconds,
        ttl_seconds=settings.health_cache_ttl_seconds,
    )

    async def startup() -> None:
        await create_schema(
            db,
            Base.metadata,
            lock_id=SCHEMA_LOCK_ID,
            seed=partial(seed.seed, password_iterations=settings.password_hash_iterations),
        )

    async def shutdown() -> None:
        await payments.close()
        await cache.close()
        await db.close()

    app = build_app(
        title="Lookout demo shop",
        settings=settings,
        metrics=metrics,
        telemetry=telemetry,
        health=health,
        routers=[catalog.router, carts.router, checkout.router, auth.router],
        startup=startup,
        shutdown=shutdown,
    )
    app.state.shop = state
    return app
