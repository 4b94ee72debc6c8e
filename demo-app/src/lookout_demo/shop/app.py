"""Wire the shop: settings, storage, telemetry and routes into one FastAPI app."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from lookout_demo.flags import FeatureFlags
from lookout_demo.settings import ShopSettings, get_shop_settings
from lookout_demo.shop import seed
from lookout_demo.shop.deps import ShopState
from lookout_demo.shop.inventory import InventoryGauges
from lookout_demo.shop.outbox import Mailer, OutboxWorker
from lookout_demo.shop.payments_client import PaymentsClient
from lookout_demo.shop.restock import Restocker
from lookout_demo.shop.routes import auth, carts, catalog, checkout, experiments, versions
from lookout_demo.shop.security import LoginGuard
from lookout_demo.storage.audit import AuditLog
from lookout_demo.storage.migrations import describe, migrate
from lookout_demo.storefront import mount_storefront
from lookout_demo.telemetry.metrics import ShopMetrics
from lookout_demo.telemetry.otel import Telemetry
from lookout_demo.web.foundation import build_foundation
from lookout_demo.web.health import HealthChecker
from lookout_demo.web.service import build_app
from lookout_telemetry.tasks import TaskSupervisor

__all__ = ["create_app"]


def create_app(
    settings: ShopSettings | None = None,
    *,
    registry: CollectorRegistry | None = None,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """Build the shop app; everything injectable so tests can build fresh ones."""
    settings = settings or get_shop_settings()
    base = build_foundation(settings, ShopMetrics, registry=registry, telemetry=telemetry)
    payments = PaymentsClient(
        settings.payments_url,
        timeout_seconds=settings.payments_timeout_seconds,
        tracer_provider=base.tracer_provider,
    )
    state = ShopState(
        settings=settings,
        db=base.db,
        cache=base.cache,
        metrics=base.metrics,
        payments=payments,
        guard=LoginGuard(
            base.cache,
            base.metrics.security if base.metrics else None,
            max_failures=settings.bruteforce_max_failures,
            window_seconds=settings.bruteforce_window_seconds,
        ),
        flags=FeatureFlags(
            settings.flags_file, base.metrics.registry if base.metrics is not None else None
        ),
    )
    health = HealthChecker(
        {"database": base.db.ping, "cache": base.cache.ping, "payments": payments.ping},
        timeout_seconds=settings.health_check_timeout_seconds,
        ttl_seconds=settings.health_cache_ttl_seconds,
    )

    audit = AuditLog(base.db)
    tasks = TaskSupervisor()
    outbox = OutboxWorker(
        base.db,
        Mailer(settings.smtp_url, sender=settings.smtp_sender),
        metrics=base.metrics.outbox if base.metrics else None,
        poll_seconds=settings.outbox_poll_seconds,
        batch_size=settings.outbox_batch_size,
        retry_seconds=settings.outbox_retry_seconds,
    )
    restocker = Restocker(
        base.db,
        base.metrics.restock if base.metrics else None,
        low_stock_threshold=settings.low_stock_threshold,
        restock_level=settings.restock_level,
        tracer_provider=base.tracer_provider,
    )

    async def startup() -> None:
        result = await migrate(
            base.db,
            "shop",
            seed=partial(seed.seed, password_iterations=settings.password_hash_iterations),
            metrics=base.metrics.migrations if base.metrics else None,
        )
        if result.outcome == "applied":
            await audit.append(
                "migration", "schema_migrated", actor="shop", details=describe(result)
            )
        tasks.spawn(outbox.run(), name="outbox-worker")
        if settings.restock_interval_seconds > 0:
            tasks.spawn(restocker.run(settings.restock_interval_seconds), name="restock")
        if base.metrics is not None:
            inventory = InventoryGauges(
                base.db, base.metrics.inventory, low_stock_threshold=settings.low_stock_threshold
            )
            tasks.spawn(inventory.run(settings.inventory_refresh_seconds), name="inventory-gauges")

    async def shutdown() -> None:
        await payments.close()

    app = build_app(
        title="Lookout demo shop",
        settings=settings,
        foundation=base,
        health=health,
        routers=[
            catalog.router,
            versions.router,
            carts.router,
            checkout.router,
            auth.router,
            experiments.router,
        ],
        startup=startup,
        shutdown=shutdown,
        external={"payments": payments.ping},
        tasks=tasks,
    )
    app.state.shop = state
    app.state.audit = audit
    app.state.outbox = outbox
    app.state.restocker = restocker
    # The storefront's pages (server-rendered, over the routes above); off: the API only.
    mount_storefront(app)
    return app
